"""The `mailbeacon` command: the front door for people who run the server."""
