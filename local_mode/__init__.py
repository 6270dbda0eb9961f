"""Run the whole stack on localhost without Docker: LiteRT model servers and the gateway."""
