"""Language-aware detectors shared by the WAF, exploit prevention and tracing.

Each detector is a hand-written tokenizer: no regular expression ever sees attacker input here,
so their cost is linear in the input and they cannot be turned into a ReDoS.
"""
