#!/usr/bin/env python3
"""Makes the tokenizer and chat-template goldens the C++ tests check against.

The reference implementations are Hugging Face `tokenizers`, `sentencepiece` and `jinja2`
(PyPI). Real vocabularies cannot be downloaded here, so the script trains small ones
offline, each with its family's exact normalizer, pre-tokenizer, model options, decoder and
post-processor, on a corpus written for this project (below) plus the license texts every
Debian system has in /usr/share/common-licenses. It then encodes a list of tricky strings
with the reference and records ids and decodes. The C++ tests need no Python: they
read what this script wrote.

    pip install tokenizers==0.23.3 sentencepiece==0.2.3 jinja2==3.1.6
    python3 tests/text/goldens/make_goldens.py            # rewrites the files below

Writes (all committed):
  tests/text/goldens/<family>/tokenizer.json (or tokenizer.model), tokenizer_config.json,
      goldens.json                       families: gpt2, llama3, qwen2, llama2, mistral,
                                         spm_bpe, spm_unigram
  tests/text/goldens/chat/goldens.json   our chat templates rendered by jinja2 the way
                                         transformers renders them
  runtime/text/data/<model>/tokenizer.json, tokenizer_config.json
                                         vocabularies of the built-in models (gpt2-tiny,
                                         llama-tiny: 512 tokens each, their vocab_size)

goldens.json: {"reference": "...", "cases": [{"text", "ids", "ids_with_special",
"decoded", "decoded_skip_special"}], "decode_cases": [{"ids", "decoded",
"decoded_skip_special"}]}: decode_cases are id sequences no encoder would make (byte tokens
cut mid-character, special tokens in the middle) to pin the decoders' replacement rules.
"""
import json
import os
import random
import sys
from pathlib import Path

import jinja2
import sentencepiece as spm
import tokenizers
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DATA = REPO / "runtime" / "text" / "data"

# The split regexes of the families (their published pre-tokenizer patterns).
GPT2_PATTERN = None  # ByteLevel(use_regex=True) carries GPT-2's pattern itself
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---- training corpus (written for this project) -------------------------------------

CORPUS = """\
The quick brown fox jumps over the lazy dog while the cat watches from the window.
A model engineer points at a checkpoint, types a prompt and expects text to come back.
Tokenizers split text into pieces; the pieces map to ids, and the ids go into the model.
We don't know whether they'll come, but we've asked, and I'm sure you'd like to know too.
She said: "It's the third time this week that the build has failed on the same test."
Numbers: 1, 22, 333, 4444, 55555, 3.14159, 2.71828, 1e-5, 0x1F, 1,000,000 and 42%.
In 2024 the team measured 48 tokens per second on a 2-core machine with 23 GiB of memory.
def encode(text: str) -> list[int]:
    return [vocab[piece] for piece in split(text)]
for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }
if (status != OK) { fprintf(stderr, "error: %s\\n", message); return 1; }
https://example.com/docs/tokenizers?lang=en&version=2#section-3
Send mail to support@example.org or call +1 (555) 010-2030 before 5 p.m.
Memory bandwidth, not compute, limits decoding: every token reads every weight once.
The scheduler places each operation on the device that finishes it first.
Caf\u00e9, na\u00efve, r\u00e9sum\u00e9, fa\u00e7ade, \u00fcber, sch\u00f6n, se\u00f1or, \u00e5ngstr\u00f6m.
\u4eca\u65e5\u306f\u3044\u3044\u5929\u6c17\u3067\u3059\u306d\u3002\u79c1\u306f\u65e5\u672c\u8a9e\u3092\u52c9\u5f37\u3057\u3066\u3044\u307e\u3059\u3002
\u6211\u4eec\u5728\u673a\u5668\u4e0a\u8fd0\u884c\u6a21\u578b\uff0c\u7136\u540e\u6253\u5370\u6587\u672c\u3002
\uc548\ub155\ud558\uc138\uc694. \uc624\ub298\uc740 \ub0a0\uc528\uac00 \uc88b\uc2b5\ub2c8\ub2e4.
\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\u060c \u0647\u0630\u0627 \u0646\u0635 \u0639\u0631\u0628\u064a \u0642\u0635\u064a\u0631.
\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u043a\u043e\u0440\u043e\u0442\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442.
Emoji: \U0001f600 \U0001f44d\U0001f3fd \U0001f469\u200d\U0001f4bb \u2764\ufe0f \U0001f1e9\U0001f1ea
    indented line with four spaces
\tTabbed\tcolumns\tlike\tthis
Windows line endings\r\nare common in files\r\nfrom other systems.
ALL CAPS SHOUTING AND MixedCase Words LikeThis and snake_case_names and kebab-case-names.
The end. The end! The end? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}
"""

WORDS = ("time person year way day thing man world life hand part child eye woman place "
         "work week case point government company number group problem fact model token "
         "device memory stream buffer kernel matrix vector tensor graph node layer weight "
         "prompt text piece merge vocabulary decoder encoder byte character string").split()
VERBS = "is runs reads writes splits merges loads places measures returns holds".split()
ADJS = "small large fast slow simple exact clear real whole first last other".split()


def corpus_lines():
    """Our corpus, generated sentences, and the license texts of the Debian system."""
    lines = CORPUS.splitlines()
    rng = random.Random(15)
    for _ in range(3000):
        n = rng.randint(4, 12)
        words = []
        for i in range(n):
            pick = rng.random()
            words.append(rng.choice(VERBS if pick < 0.2 else ADJS if pick < 0.4 else WORDS))
        s = " ".join(words)
        s = s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ";", ":"])
        if rng.random() < 0.2:
            s += " " + str(rng.randint(0, 10**rng.randint(1, 7)))
        lines.append(s)
    licenses = Path("/usr/share/common-licenses")
    if licenses.is_dir():
        for name in sorted(os.listdir(licenses)):
            p = licenses / name
            if p.is_file() and not p.is_symlink():
                lines.extend(p.read_text(encoding="utf-8", errors="replace").splitlines())
    return lines


# ---- the strings every family is checked on ------------------------------------------

CASES = [
    "",
    "Hello",
    "Hello, world!",
    " Hello world",
    "hello  world   three    spaces",
    "     leading and trailing spaces     ",
    "tabs\tand\t\ttabs",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\nendings\r\n",
    "\n\n\nthree newlines first",
    " \n \t \r\n mixed whitespace \u00a0 no-break space",
    "I'm sure they'll say we've done what you'd do; it's John's and THEY'RE HE'S.",
    "don't DON'T Don't can't won't",
    "12345678901234567890 and 3.14159265358979 and 1,000,000",
    "007 0 00 000 0000",
    "def f(x):\n    return x * 2  # double it\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "https://example.com/path/to/page?query=1&other=two#frag",
    "user@example.org, C:\\Windows\\System32, /usr/local/bin",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, \U0001f44d\U0001f3fd thumbs, "
    "\U0001f3f3\ufe0f\u200d\U0001f308 flag",
    "\U0001f600\U0001f601\U0001f602 emoji run",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4. \uc548\ub155\ud558\uc138\uc694!",
    "\u8fd9\u662f\u4e2d\u6587\u6587\u672c\uff0c\u5305\u542b\u6807\u70b9\u7b26\u53f7\u3002",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 123",
    "e\u0301 vs \u00e9, A\u030a vs \u00c5, \u1100\u1161 vs \uac00",  # combining vs precomposed
    "\ufb01ne \u2460 \u00bd x\u00b2",  # compatibility characters
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "<s>Hello</s> <unk>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|im_start|>user\nHi<|im_end|>\n",
    "[INST] question [/INST]",
    "\u2581already has meta spaces\u2581\u2581",
    "zero\u200bwidth\u200cjoiners\u200d and \ufeffBOM",
    "NEL\u0085line separator\u2028paragraph\u2029end",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u05e9\u05dc\u05d5\u05dd",
    "a" * 64,
    "ThisIsAVeryLongIdentifierWithoutSpacesThatGoesOnAndOnAndOnForAWhile_123_456",
    "The quick brown fox jumps over the lazy dog.",
    "Tokenizer tokenizer tokenizers tokenized tokenizing",
    "!!! ??? ... ,,, ;;; ::: \"\" '' `` ~~~",
    "  \n",
    " ",
]


def hf_goldens(tok, extra_decode_ids):
    cases = []
    for text in CASES:
        enc = tok.encode(text, add_special_tokens=False)
        enc_special = tok.encode(text, add_special_tokens=True)
        cases.append({
            "text": text,
            "ids": enc.ids,
            "ids_with_special": enc_special.ids,
            "decoded": tok.decode(enc.ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(enc_special.ids, skip_special_tokens=True),
        })
    decode_cases = []
    for ids in extra_decode_ids:
        decode_cases.append({
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
    return {"reference": f"tokenizers {tokenizers.__version__}", "cases": cases,
            "decode_cases": decode_cases}


def random_decode_ids(vocab_size, specials, rng, byte_ids=()):
    """Id sequences no encoder makes: random ids, byte tokens cut mid-character, specials."""
    out = []
    for n in (1, 2, 3, 5, 8, 13, 40):
        out.append([rng.randrange(vocab_size) for _ in range(n)])
    if specials:
        out.append([specials[0], rng.randrange(vocab_size), specials[-1], rng.randrange(vocab_size)])
        out.append([rng.randrange(vocab_size), specials[0]])
    if byte_ids:
        b = list(byte_ids)
        # a 3-byte character cut short, then text; a lone continuation byte; 0xFF
        out.append([b[0xE4], b[0xBD], rng.randrange(vocab_size)])
        out.append([b[0xE4], b[0xBD], b[0xA0], b[0x80], b[0x41]])
        out.append([b[0xFF], b[0xC3], b[0xA9], b[0xF0], b[0x9F]])
    return out


def write_json(path, value):
    """Indented at the top level only: one case (or one list item) per line."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def dump(v, depth):
        if depth < 2 and isinstance(v, dict) and v:
            items = [json.dumps(k, ensure_ascii=False) + ": " + dump(x, depth + 1)
                     for k, x in v.items()]
            return "{\n" + ",\n".join(items) + "\n}"
        if depth < 2 and isinstance(v, list) and v and isinstance(v[0], (dict, list)):
            return "[\n" + ",\n".join(dump(x, 2) for x in v) + "\n]"
        return json.dumps(v, ensure_ascii=False)

    path.write_text(dump(value, 0) + "\n", encoding="utf-8")


def save_tokenizer(tok, path):
    """tokenizer.json, compact but one merge/vocab entry per line for readable diffs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(tok.to_str())
    path.write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    # The written file must load back to the same tokenizer.
    again = Tokenizer.from_file(str(path))
    for text in CASES:
        assert again.encode(text).ids == tok.encode(text).ids, text


# ---- the families ---------------------------------------------------------------------

def byte_level_bpe(vocab_size, lines, pattern, ignore_merges, nfc, extra_words):
    """GPT-2 (pattern None), Llama 3 and Qwen2 style byte-level BPE."""
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True,
                                                     use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    if extra_words:
        # Whole words in the vocabulary that the merges do not build: only a tokenizer
        # with ignore_merges (Llama 3) emits them as one id.
        data = json.loads(tok.to_str())
        vocab = data["model"]["vocab"]
        for w in extra_words:
            if w not in vocab:
                vocab[w] = len(vocab)
        tok = Tokenizer.from_str(json.dumps(data))
    return tok


def family_gpt2(lines, vocab_size=1000):
    tok = byte_level_bpe(vocab_size - 1, lines, None, False, False, None)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=True)])
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    eot = tok.token_to_id("<|endoftext|>")
    config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
              "unk_token": "<|endoftext|>", "add_bos_token": False,
              "model_max_length": 1024, "tokenizer_class": "GPT2Tokenizer"}
    gen = {"bos_token_id": eot, "eos_token_id": eot}
    return tok, config, gen


LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eot_id|>", "<|reserved_special_token_0|>"]


def family_llama3(lines, vocab_size=1000, chat_template=None):
    extra = ["\u0120tokenizer", "\u0120Tokenizers"]  # " tokenizer", " Tokenizers" byte-level
    n_special = len(LLAMA3_SPECIALS)
    tok = byte_level_bpe(vocab_size - n_special - len(extra), lines, LLAMA3_PATTERN, True,
                         False, extra)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False)
                            for s in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A",
            pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
            special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
              "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
    if chat_template:
        config["chat_template"] = chat_template
    gen = {"bos_token_id": bos,
           "eos_token_id": [tok.token_to_id("<|end_of_text|>"), tok.token_to_id("<|eot_id|>")]}
    return tok, config, gen


def family_qwen2(lines, vocab_size=1000, chat_template=None):
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = byte_level_bpe(vocab_size - len(specials), lines, QWEN2_PATTERN, False, True, None)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
              "add_bos_token": False, "model_max_length": 32768,
              "tokenizer_class": "Qwen2Tokenizer"}
    if chat_template:
        config["chat_template"] = chat_template
    gen = {"bos_token_id": tok.token_to_id("<|endoftext|>"),
           "eos_token_id": [tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")]}
    return tok, config, gen


def sentencepiece_style_bpe(lines, vocab_size, metaspace_pre_tokenizer, control_tokens):
    """Llama 2 / Mistral layout: <unk> <s> </s>, 256 <0xXX> byte tokens, then BPE pieces
    with the SentencePiece space marker; byte fallback for characters not in the vocab."""
    base = ["<unk>", "<s>", "</s>"] + control_tokens
    n_bytes = 256
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581",
                                                         prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(base) - n_bytes, min_frequency=2,
                                  show_progress=False, limit_alphabet=120)
    trainer_tok.train_from_iterator(lines, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    # Renumber: specials, bytes, then the trained pieces in their order.
    vocab = {}
    for s in base:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    if metaspace_pre_tokenizer:
        # Mistral v0.3 / legacy=False layout: the pre-tokenizer marks spaces.
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first",
                                                     split=False)
    else:
        # Llama 2 layout: the normalizer prepends and replaces spaces, no pre-tokenizer.
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                               normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in base])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def family_llama2(lines, vocab_size=1000):
    tok = sentencepiece_style_bpe(lines, vocab_size, False, [])
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "add_bos_token": True, "add_eos_token": False, "legacy": True,
              "model_max_length": 4096, "tokenizer_class": "LlamaTokenizer"}
    gen = {"bos_token_id": 1, "eos_token_id": 2}
    return tok, config, gen


def family_mistral(lines, vocab_size=1000, chat_template=None):
    tok = sentencepiece_style_bpe(lines, vocab_size, True, ["[INST]", "[/INST]"])
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "add_bos_token": True, "add_eos_token": False, "legacy": False,
              "model_max_length": 32768, "tokenizer_class": "LlamaTokenizer"}
    if chat_template:
        config["chat_template"] = chat_template
    gen = {"bos_token_id": 1, "eos_token_id": 2}
    return tok, config, gen


def family_sentencepiece(lines, out_dir, model_type, vocab_size):
    out_dir.mkdir(parents=True, exist_ok=True)
    text_lines = [l for l in lines if l.strip()]
    prefix = out_dir / "tokenizer"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text_lines), model_prefix=str(prefix), model_type=model_type,
        vocab_size=vocab_size, character_coverage=0.98, byte_fallback=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, user_defined_symbols=["<sep>"],
        # identity: no precompiled normalization map (it would be 240 KB of test data);
        # Llama 2's tokenizer.model normalizes the same way.
        normalization_rule_name="identity", split_digits=(model_type == "bpe"),
        remove_extra_whitespaces=(model_type == "unigram"),
        num_threads=1, minloglevel=2, max_sentence_length=8192)
    (out_dir / "tokenizer.vocab").unlink()
    sp = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    cases = []
    for text in CASES:
        ids = sp.encode(text)
        with_special = [sp.bos_id()] + ids
        cases.append({
            "text": text,
            "ids": ids,
            "ids_with_special": with_special,
            "decoded": sp.decode(ids),
            "decoded_skip_special": sp.decode(with_special),
        })
    rng = random.Random(7)
    byte_ids = [sp.piece_to_id(f"<0x{b:02X}>") for b in range(256)]
    decode_cases = []
    for ids in random_decode_ids(sp.get_piece_size(), [1, 2], rng, byte_ids):
        decode_cases.append({"ids": ids, "decoded": sp.decode(ids),
                             "decoded_skip_special": sp.decode(ids)})
    write_json(out_dir / "goldens.json", {
        "reference": f"sentencepiece {spm.__version__}", "cases": cases,
        "decode_cases": decode_cases})
    write_json(out_dir / "tokenizer_config.json", {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
        "tokenizer_class": "LlamaTokenizer"})


def write_hf_family(name, tok, config, gen, out_dir):
    save_tokenizer(tok, out_dir / "tokenizer.json")
    write_json(out_dir / "tokenizer_config.json", config)
    if gen is not None:
        write_json(out_dir / "generation_config.json", gen)
    rng = random.Random(sum(map(ord, name)))
    special_ids = sorted(tok.get_added_tokens_decoder().keys())
    byte_ids = ()
    if tok.token_to_id("<0x41>") is not None:
        byte_ids = [tok.token_to_id(f"<0x{b:02X}>") for b in range(256)]
    extra = random_decode_ids(tok.get_vocab_size(), special_ids, rng, byte_ids)
    write_json(out_dir / "goldens.json", hf_goldens(tok, extra))


# ---- chat templates -------------------------------------------------------------------
# Our own templates producing each family's prompt format, written with the Jinja
# constructs the families' published templates use (namespace, slicing, reverse loops,
# string methods, tojson, raise_exception, loop variables, whitespace control).

CHAT_LLAMA3 = """\
{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = "1 Jan 2025" %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_text = messages[0]['content'] | trim %}
    {%- set rest = messages[1:] %}
{%- else %}
    {%- set system_text = "" %}
    {%- set rest = messages %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Today: " + date_string + "\\n" }}
{%- if tools is not none and tools is defined %}
    {{- "Tools you may call:\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=2) }}
        {{- "\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_text }}
{{- "<|eot_id|>" }}
{%- for message in rest %}
    {%- if message.role not in ['user', 'assistant', 'tool'] %}
        {{- raise_exception("unknown role: " ~ message.role) }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

CHAT_CHATML = """\
{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(last_user=messages|length - 1, seen=false) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if not ns.seen and message.role == "user" and not message.content.startswith('<tool_response>') %}
        {%- set ns.seen = true %}
        {%- set ns.last_user = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set thinking = '' %}
        {%- if '</think>' in content %}
            {%- set thinking = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_user and thinking %}
            {{- '<|im_start|>assistant\\n<think>\\n' + thinking.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
        {%- else %}
            {{- '<|im_start|>assistant\\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or messages[loop.index0 - 1].role != "tool" %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}{{ message.content }}{{- '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != "tool" %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}
"""

CHAT_MISTRAL = """\
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.last and system_message is defined %}
            {{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}
        {%- else %}
            {{- '[INST] ' + message['content'] + '[/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content']|trim + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

# Exercises the interpreter beyond the three formats: filters, tests, dict iteration,
# arithmetic, ternaries, loop controls and default values, plain (non "-") tags so that
# trim_blocks / lstrip_blocks matter.
CHAT_FEATURES = """\
{% set greeting = greeting | default('hi') %}
{% for message in messages %}
  {% if loop.first %}[{{ loop.length }} messages]{% endif %}
  {{ loop.index }}/{{ loop.revindex }} {{ message.role | upper }}: {{ message.content | replace('\\n', ' ') }}
  {% if message.content | length > 20 %}(long){% elif message.content is string %}(short){% endif %}

{% endfor %}
{% for k, v in extra.items() %}{{ k }}={{ v }}{{ ', ' if not loop.last else '' }}{% endfor %}

{{ extra | tojson }} {{ [1, 2.5, 'x', none, true] | tojson }} {{ extra.keys() | list | join('|') }}
{{ 7 // 2 }} {{ 7 % 3 }} {{ 2 * 3 + 1 }} {{ 10 / 4 }} {{ -3 + 1 }} {{ 'ab' * 3 }} {{ 1 if 2 > 1 else 0 }}
{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}

{{ 'Hello World'.lower() }} {{ 'a,b,c'.split(',') | length }} {{ '  pad  '.strip() }}! {{ 'x'.upper() ~ 3 }}
{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' + ') }}
{{ greeting | capitalize }} {{ missing is defined }} {{ none is none }} {{ [] | first is defined }}
{% if extra.get('n', 0) is number and 'b' in extra %}{{ extra['n'] + 1 }}{% endif %}
{{ messages[-1]['content'][:5] }} {{ (messages | last).role }} {{ messages | map(attribute='role') | unique | list | length }}
{# a comment #}
{%- generation -%} kept {%- endgeneration -%}
"""

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse.  "},
     {"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Answer in French."},
     {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "  Bonjour ! \n"},
     {"role": "user", "content": "Say it again,\nplease."}],
    [{"role": "user", "content": "Think first."},
     {"role": "assistant", "content": "<think>\nsome reasoning\n</think>\n\nThe answer."},
     {"role": "user", "content": "And then?"},
     {"role": "assistant", "content": "<think>more</think>Done."}],
    [{"role": "user", "content": "call the tool"},
     {"role": "tool", "content": "{\"temp\": 21}"},
     {"role": "tool", "content": "second result"},
     {"role": "user", "content": "thanks \U0001f600 \u00e9t\u00e9"}],
    [{"role": "assistant", "content": "I speak first"},
     {"role": "user", "content": "wrong order"}],
    [{"role": "robot", "content": "beep"}],
]

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}}]


def transformers_environment():
    """jinja2 configured the way transformers renders chat templates."""

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    from jinja2.ext import Extension
    from jinja2 import nodes

    class Generation(Extension):  # transformers' {% generation %} block, rendered as is
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, "jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def chat_goldens():
    env = transformers_environment()
    templates = {"llama3": CHAT_LLAMA3, "chatml": CHAT_CHATML, "mistral": CHAT_MISTRAL,
                 "features": CHAT_FEATURES}
    specials = {"llama3": ("<|begin_of_text|>", "<|eot_id|>"), "chatml": ("", "<|im_end|>"),
                "mistral": ("<s>", "</s>"), "features": ("<s>", "</s>")}
    cases = []
    for name, source in templates.items():
        template = env.from_string(source)
        for i, messages in enumerate(CONVERSATIONS):
            for add_generation_prompt in (False, True):
                variants = [{}]
                if name == "llama3":
                    variants = [{}, {"tools": TOOLS, "date_string": "26 Jul 2024"}]
                if name == "chatml":
                    variants = [{}, {"enable_thinking": False}]
                if name == "features":
                    variants = [{"extra": {"b": "two", "n": 3, "a": [1, 2]}}]
                for extra in variants:
                    kwargs = dict(extra)
                    kwargs.update(messages=messages, add_generation_prompt=add_generation_prompt,
                                  bos_token=specials[name][0], eos_token=specials[name][1])
                    case = {"template": name, "conversation": i,
                            "add_generation_prompt": add_generation_prompt,
                            "variables": extra}
                    try:
                        case["rendered"] = template.render(**kwargs)
                    except jinja2.exceptions.TemplateError as e:
                        case["error"] = str(e)
                    cases.append(case)
    return {"reference": f"jinja2 {jinja2.__version__}", "templates": templates,
            "conversations": CONVERSATIONS, "special_tokens": specials, "cases": cases}


def main():
    lines = corpus_lines()
    out = HERE

    tok, config, gen = family_gpt2(lines)
    write_hf_family("gpt2", tok, config, gen, out / "gpt2")
    tok, config, gen = family_llama3(lines, chat_template=CHAT_LLAMA3)
    write_hf_family("llama3", tok, config, gen, out / "llama3")
    tok, config, gen = family_qwen2(lines, chat_template=CHAT_CHATML)
    write_hf_family("qwen2", tok, config, gen, out / "qwen2")
    tok, config, gen = family_llama2(lines)
    write_hf_family("llama2", tok, config, gen, out / "llama2")
    tok, config, gen = family_mistral(lines, chat_template=CHAT_MISTRAL)
    write_hf_family("mistral", tok, config, gen, out / "mistral")
    family_sentencepiece(lines, out / "spm_bpe", "bpe", 1000)
    family_sentencepiece(lines, out / "spm_unigram", "unigram", 1000)
    write_json(out / "chat" / "goldens.json", chat_goldens())

    # Built-in models: 512-token vocabularies (their config's vocab_size).
    tok, config, gen = family_gpt2(lines, vocab_size=512)
    save_tokenizer(tok, DATA / "gpt2-tiny" / "tokenizer.json")
    write_json(DATA / "gpt2-tiny" / "tokenizer_config.json", config)
    write_json(DATA / "gpt2-tiny" / "generation_config.json", gen)
    tok, config, gen = family_llama3(lines, vocab_size=512, chat_template=CHAT_LLAMA3)
    save_tokenizer(tok, DATA / "llama-tiny" / "tokenizer.json")
    write_json(DATA / "llama-tiny" / "tokenizer_config.json", config)
    write_json(DATA / "llama-tiny" / "generation_config.json", gen)
    print("goldens written", file=sys.stderr)


if __name__ == "__main__":
    main()
