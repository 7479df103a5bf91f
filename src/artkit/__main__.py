from artkit.cli import main

main()
