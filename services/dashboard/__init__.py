"""`greenai dashboard`: a live view of the event log in the browser (read models kept by the server)."""
