"""Pure metric functions: window and stream metrics (VUS included), ranges, and the verdict on a threshold's promise."""
