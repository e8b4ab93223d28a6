"""The detection engine: ddwaf 2.x rule documents in, events and actions out.

    rs = load_ruleset()                # bundled rules, a path, or a parsed document
    ctx = rs.context()                 # one per request
    result = ctx.run({"server.request.query": {"q": ["1' OR 1=1--"]}}, timeout_us=5000)
"""

from bastion.waf.document import RulesetError
from bastion.waf.engine import WafContext, WafResult
from bastion.waf.limits import DEFAULT_LIMITS, Limits
from bastion.waf.ruleset import Ruleset, load_ruleset, read_document

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "Ruleset",
    "RulesetError",
    "WafContext",
    "WafResult",
    "load_ruleset",
    "read_document",
]
