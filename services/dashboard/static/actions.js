// What a person does on the experiment page as the `cli` role: review a proposal (approve, edit its
// steps, reject) and cancel the experiment. The server checks every request again, with the CLI's
// words; this file only builds the controls and sends. Loaded before dashboard.js (its el and post).
"use strict";

function reviewControls(exp, p, onSent) {
  const comment = el("input", { id: "review-comment", placeholder: "comment (optional)", maxlength: "2000" });
  const result = el("p", { id: "review-result", class: "reason" });
  const steps = el("textarea", { id: "review-steps", rows: "5", cols: "90", spellcheck: "false",
                                 title: 'the steps to run instead, e.g. [{"kind": "quantize", "method": "rtn", "params": {"bits": 8}}]' });
  steps.value = JSON.stringify(p.step_objects);
  steps.hidden = true;
  const done = { approve: "approved", edit: "edited", reject: "rejected" };

  async function send(verdict, extra) {
    result.textContent = "sending…";
    const { ok, data } = await post(`/api/experiments/${encodeURIComponent(exp)}/review`,
      { episode: p.episode, proposal: p.proposal, verdict, comment: comment.value, ...extra });
    result.textContent = ok ? done[verdict] : data.error || "refused";
    if (ok) onSent(done[verdict]);
  }

  const approve = el("button", { id: "review-approve", type: "button" }, "approve");
  approve.onclick = () => send("approve", {});
  const reject = el("button", { id: "review-reject", type: "button" }, "reject");
  reject.onclick = () => send("reject", {});
  const edit = el("button", { id: "review-edit", type: "button" }, "edit");
  edit.onclick = () => {
    if (steps.hidden) {  // first click: show the proposal's steps to change
      steps.hidden = false;
      edit.textContent = "run these steps instead";
      return;
    }
    let parsed;
    try { parsed = JSON.parse(steps.value); } catch (e) {
      result.textContent = `not valid steps: ${e.message}`;
      return;
    }
    send("edit", { steps: parsed });
  };
  return [comment, approve, edit, reject, steps, result];
}

function cancelControls(exp, onSent) {
  const reason = el("input", { id: "cancel-reason", placeholder: "reason (optional)", maxlength: "2000" });
  const result = el("p", { id: "cancel-result", class: "reason" });
  const ask = el("button", { id: "cancel-ask", type: "button" }, "Cancel this experiment…");
  const confirm = el("button", { id: "cancel-confirm", type: "button" },
                     "Yes, cancel it: no new episodes; the jobs running now finish");
  confirm.hidden = true;
  ask.onclick = () => { ask.hidden = true; confirm.hidden = false; };
  confirm.onclick = async () => {
    result.textContent = "sending…";
    const { ok, data } = await post(`/api/experiments/${encodeURIComponent(exp)}/cancel`, { reason: reason.value });
    result.textContent = ok ? "cancellation requested" : data.error || "refused";
    if (ok) onSent(result.textContent);
  };
  return [reason, ask, confirm, result];
}
