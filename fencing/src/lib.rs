//! STONITH: fence devices, topology levels, delays (being built).
