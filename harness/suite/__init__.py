"""The generated goal suite: ablation and bug goals with reference solutions (docs/harness.md)."""
