"""The router: retries, cooldowns, rate limits and routes (fallback, pool, split) over profiles.

One module per job: :mod:`.state` (what is remembered between calls, local or shared), :mod:`.policy`
(what to do after a failure). Nothing here is imported by ``llmswitch --help``.
"""
