"""ESP32-C3 peripherals: the UART."""
