"""The Slack side: the Bolt app, scheduler, state and the command line."""
