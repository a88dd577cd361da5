from padlab.cli import main

main()
