"""Rolling out a new version: shadow, canary, gates, automatic rollback and promotion (docs/rollouts.md).

- `policy`: the per-model policy file, written atomically with a revision check;
- `gates`: the live figures of a rollout and the gates judged on them;
- `shadow`: copies of answered requests for the candidate, off the answer's path;
- `rollouts`: the routing and the judging in each serving process;
- `python -m service.rollout`: the command that writes a policy.
"""
