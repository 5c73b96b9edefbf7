//! `booth mix`. (Being written.)
