from service.commands.cli import main

main()
