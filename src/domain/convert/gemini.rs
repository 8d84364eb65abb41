//! Conversion between this format and Claude Messages (see `convert` for the contract).
