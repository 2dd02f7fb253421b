"""What episodes are about: episode sources, language variants, audio, transcripts, embeddings, similarity."""
