//! The mock OpenRouter server.
