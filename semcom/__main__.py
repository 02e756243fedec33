from semcom.cli.app import main

main()
