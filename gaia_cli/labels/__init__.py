"""Label spaces: the unified label space artifact, unification, word vectors, classifier surgery."""
