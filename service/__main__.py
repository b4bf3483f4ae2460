from service.commands import main

main()
