from hrm_export.cli import main

main()
