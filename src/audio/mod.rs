//! Audio IO. (Being written.)
