"""Board-level parts between and around the MCUs: the UART link with its faults, the motor plant,
host-side UART endpoints, the recorded peer of a field replay."""
