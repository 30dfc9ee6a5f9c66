from baas_cli.main import main

main()
