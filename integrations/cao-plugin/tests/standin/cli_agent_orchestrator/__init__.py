"""TEST STAND-IN for CAO (awslabs/cli-agent-orchestrator), which is not installed here.

Only the plugin contract is reproduced: ``plugins.base`` (``CaoPlugin``, ``hook``, the
``_cao_hook_event`` attribute) and ``plugins.events`` (the five ``Post*Event`` dataclasses
with CAO's field names and defaults, as of CAO v2.4.x). Tests and tools/feed_events.py put
this directory on sys.path only when the real package cannot be imported.
"""
