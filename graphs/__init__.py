"""Models and losses (plain nn.Modules; they never read the config)."""
