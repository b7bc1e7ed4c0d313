from greenai.cli.app import main

main()
