//! `estimate`: live and batch side by side.
