//! Stream tests for the Gemini converter.
