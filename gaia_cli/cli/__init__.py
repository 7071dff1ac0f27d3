"""gaia's command line: one thin module per subcommand (options -> library call -> artifact out)."""
