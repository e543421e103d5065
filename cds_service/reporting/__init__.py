"""The informaticists' report: how cards fare (shown, accepted, overridden, held back) and how fast."""
