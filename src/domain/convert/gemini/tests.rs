//! Golden and property tests for the Gemini converter.
