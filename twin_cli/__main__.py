from twin_cli.main import console

if __name__ == "__main__":  # not when a spawned process (the plotting process) imports it
    console()
