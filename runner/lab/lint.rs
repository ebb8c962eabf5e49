//! Static checks of a lab (filled in below).
