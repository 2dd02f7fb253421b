import numpy as np

from podrec.content.embeddings import chunk_words, embed_texts, text_sha256


class BagOfWords:
    """A tiny fake model: counts two words. Enough to check chunking and pooling."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size, normalize_embeddings, convert_to_numpy):
        self.calls.append(list(texts))
        v = np.array(
            [[t.split().count("cat") + 1e-3, t.split().count("dog")] for t in texts], dtype=np.float32
        )
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_chunks_cover_the_whole_text_with_overlap() -> None:
    words = [f"w{i}" for i in range(400)]
    chunks = chunk_words(" ".join(words), size=180, overlap=30)
    assert [len(c.split()) for c in chunks] == [180, 180, 100]
    assert chunks[1].split()[0] == "w150"
    assert chunks[-1].split()[-1] == "w399"
    assert chunk_words("short text") == ["short text"]


def test_long_transcripts_count_in_full() -> None:
    model = BagOfWords()
    # 180 words about cats, then 360 about dogs: the whole text is mostly about dogs.
    long = " ".join(["cat"] * 180 + ["dog"] * 360)
    (vector,) = embed_texts(model, [long])
    assert vector[1] > vector[0] > 0  # a first-chunk-only embedding would be all cat
    assert abs(np.linalg.norm(vector) - 1) < 1e-6
    assert len(model.calls) == 1  # every chunk of every text in one encode call


def test_hash_is_of_the_exact_text() -> None:
    assert text_sha256("a") != text_sha256("a ")
    assert len(text_sha256("é")) == 64
