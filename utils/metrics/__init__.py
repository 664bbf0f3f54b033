"""Pure metric functions: window and stream metrics, VUS, ranges, and the verdict on a threshold's promise."""
