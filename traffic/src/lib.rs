//! Traffic routers for progressive delivery (work in progress: see issue 5).
