"""Command-line parsing shared by the commands: usage errors as one line with status 2."""
import argparse


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose usage errors are a single line, like every other error here."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')
