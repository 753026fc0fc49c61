"""The Zou connector against CGWire's own zou server and gazu client (pinned in requirements.txt)."""
