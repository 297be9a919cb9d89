"""From files to machines: repl platform files, the platform builder, ELF images and DWARF types."""
