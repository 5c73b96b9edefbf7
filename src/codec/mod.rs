//! Opus and Ogg Opus. (Being written.)
