from sealbox.cli.entry import main

main()
