"""Sans-IO codecs, one module per API dialect: no sockets, no awaits, no clocks."""
