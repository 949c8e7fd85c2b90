"""Read a fan's question: what kind of answer it wants, and what it refers to.

Everything here is plain string work on the question (and the chat so far);
no model is involved, so it is cheap and deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

# A "when" question wants a date, "how many" a number, "who" or "where" a
# name that is not already in the question. A sentence that offers what the
# question wants is more likely to answer it.
_WANTS = [
    ("date", re.compile(r"\bwhen\b|\bwhat (year|date|century|decade|month|day)\b|\b(which|what) (year|era)\b", re.I)),
    ("number", re.compile(r"\bhow (many|much|old|long|far|often)\b|\bwhat (number|percentage|age)\b", re.I)),
    ("name", re.compile(r"\bwho(m|se)?\b|\bwhere\b|\bwhich (city|country|town|place|composer|singer)\b", re.I)),
]
_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b(January|February|March|April|May|June|July|August|September|October|"
    r"November|December|spring|summer|autumn|winter|century|decade)\b",
    re.I,
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|dozen|several|half|once|twice)\b",
    re.I,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]+")
_SENTENCE_START = re.compile(r"(?:^|(?<=[.!?:;]\s))\W*[A-Z][\w'’-]*")
# "What cause...", "Which traditional instruments...", "What kind of deal...":
# the words after "what"/"which" name the kind of thing asked for. The answer
# names an instance ("preserving the heritage"), so it need not repeat them.
_ANSWER_TYPE = re.compile(r"\b(?:what|which)\s+(?:(?:kinds?|types?|sorts?|forms?)\s+of\s+)?(\w+)(?:\s+(\w+))?", re.I)
#: Words of a question's syntax, not its topic: question words, auxiliaries
#: and personal pronouns ("she" is the artist in every sentence). As search
#: terms they find sentences by accident ("Who is Sezim?" matched "listeners
#: ... who were captivated"); absent from a short seed, they would count as
#: words the seeds don't know. The retriever leaves them out of a question's
#: BM25 terms.
QUESTION_STOPWORDS = frozenset(
    "what which who whom whose when where why how do does did has have had were been being am "
    "can could would should may might must shall "
    "i me my you your he him his she her hers herself himself we us our they them their its itself".split()
) | frozenset(
    # The light words of chat ("how did she get into jazz", "does she still play it",
    # "is she big tho"): they name no topic, and absent from a seed they made a
    # fan's paraphrase look like a question the seeds cannot answer.
    "get gets got getting go goes going went gone make makes made really just like "
    "so very much kind sort thing things stuff anything something though tho".split()
)
# Words that end the answer-type phrase: "What is...", "Which of her...".
_NOT_ANSWER_TYPE = QUESTION_STOPWORDS | frozenset(
    "is was are be will a an the of in on at to for with by from about as it this that these those".split()
)
_WORD = re.compile(r"\w+")

# Words that point back at something said earlier in the chat. "She" and
# "her" are left out: in a bot about one artist they mean the artist.
_ANAPHORA = re.compile(r"\b(it|its|that|this|these|those|they|them|their|there|then)\b", re.I)
# Control, zero-width and bidi-override characters, and lone surrogates
# (valid in JSON, but not text any tokenizer can encode).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")

# Markup pasted into a question: a script or style element with its code, or
# any other tag. Its words ("script", "alert", "onerror") are not the fan's
# question, and would make the seeds look as if they lacked the answer.
_CODE_ELEMENT = re.compile(r"<(script|style)\b[^>]*>.*?(</\1\s*>|$)", re.I | re.S)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def normalize_question(text: str) -> str:
    """Make a question safe to process: NFC, no control or bidi characters, no HTML tags, tidy spaces."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    text = _TAG.sub(" ", _CODE_ELEMENT.sub(" ", text))
    return " ".join(text.split())


# Polite frames around a question: "Can you tell me about her album?",
# "Do you know where she studied?". Their words ("tell", "know") are in no
# seed, so they would read as a question the seeds cannot answer.
_REQUEST_FRAME = re.compile(
    r"^(?:(?:hey|hi|so|and|ok|okay|please)[,!]?\s+)*"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+|pls\s+|plz\s+)?(?:tell|give|show)\s+me"
    r"|(?:please\s+)?tell\s+me"
    r"|what\s+(?:do|can)\s+you\s+(?:know|tell\s+me)"
    r"|do\s+you\s+(?:happen\s+to\s+)?know"
    r"|i\s*(?:'d|would)\s+(?:like|love)\s+to\s+know"
    r"|i\s+(?:want|wanted|need)\s+to\s+know"
    r"|i\s+(?:wonder|was\s+wondering)"
    r")(?:\s+(?:a\s+(?:bit|little)|more|something(?:\s+(?:more|interesting|new))?|anything))*"
    r"(?:\s+(?:about|of|on|if|whether))?(?:[\s,:]+|$)",
    re.I,
)
_TRAILING_PLEASE = re.compile(r"[\s,]+please\s*([?.!]*)$", re.I)


def strip_request_frame(question: str) -> str:
    """The question inside a polite frame: "Do you know where she studied?" -> "where she studied?".

    A frame with nothing after it ("Tell me about") is left as it is.
    """
    inner = _TRAILING_PLEASE.sub(r"\1", _REQUEST_FRAME.sub("", question, count=1))
    return inner if any(ch.isalnum() for ch in inner) else question


# How fans spell in a chat box, written out: "wat kind of music dose she make",
# "wher does she get ideas". Only forms that are no English word of their own.
_CHAT_SPELLINGS = {
    "u": "you",
    "ur": "your",
    "wat": "what",
    "wats": "what's",
    "whats": "what's",
    "waht": "what",
    "wht": "what",
    "wher": "where",
    "wheres": "where's",
    "wen": "when",
    "whn": "when",
    "wut": "what",
    "wot": "what",
    "whos": "who's",
    "hows": "how's",
    "shes": "she's",
    "hes": "he's",
    "pls": "please",
    "plz": "please",
    "smth": "something",
    "sth": "something",
    "cuz": "because",
    "coz": "because",
    "gonna": "going to",
    "wanna": "want to",
    "kinda": "kind of",
    "dont": "don't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "isnt": "isn't",
    "wasnt": "wasn't",
    "cant": "can't",
    "wont": "won't",
    "im": "I'm",
    "ive": "I've",
    "abt": "about",
    "bout": "about",
}
_CHAT_WORD = re.compile(r"\b(" + "|".join(sorted(_CHAT_SPELLINGS, key=len, reverse=True)) + r")\b", re.I)


def plain_spelling(question: str) -> str:
    """Chat spellings written out: "wat does u know abt her" -> "what does you know about her"."""
    return _CHAT_WORD.sub(lambda m: _CHAT_SPELLINGS[m.group(1).lower()], question)


def clean_question(text: str) -> str:
    """The question as the bot reads it: normalised, without markup or a polite frame."""
    return strip_request_frame(normalize_question(text))


# "what's 2+2", "whats 15 times 12", "calculate 7 x 8": sums, which no document about an artist answers.
_ARITHMETIC = re.compile(
    r"^(?:(?:what\s*(?:'s|is)?|whats|how\s+much\s+is|calculate|compute|solve)\s+)?"
    r"[-+]?\d[\d.,]*(?:\s*(?:[-+*/x×÷^]|times|plus|minus|over|divided\s+by|multiplied\s+by)\s*[-+]?\d[\d.,]*)+"
    r"\s*[?=!.]*$",
    re.I,
)


def is_arithmetic(question: str) -> bool:
    """Whether the question is a sum ("what's 15 times 12?"): off-topic for any artist's documents."""
    return bool(_ARITHMETIC.match(question.strip()))


def words(text: str) -> set[str]:
    """Lower-cased words of a text."""
    return {w.lower() for w in _WORD.findall(text)}


def wanted_answer(question: str) -> str | None:
    """What kind of thing the question asks for: "date", "number", "name" or None."""
    for kind, pattern in _WANTS:
        if pattern.search(question):
            return kind
    return None


def offers(sentence: str, wanted: str | None, question_words: set[str]) -> bool | None:
    """Whether ``sentence`` contains the kind of thing the question wants.

    None when the question wants nothing in particular.
    """
    if wanted == "date":
        return bool(_DATE.search(sentence))
    if wanted == "number":
        return bool(_NUMBER.search(sentence))
    if wanted == "name":
        # A capitalised word that starts a sentence ("As a child, ...") names nothing.
        return any(w.lower() not in question_words for w in _CAPITALISED.findall(_SENTENCE_START.sub("", sentence)))
    return None


def answer_type_words(question: str) -> frozenset[str]:
    """The (lower-case) words that name the kind of answer asked for, if any.

    "What cause is she committed to?" gives {"cause"}; "Which jazz singer
    made her..." gives {"jazz", "singer"}; "What is her album called?" gives
    nothing. At most two words are taken: without a parser, a longer phrase
    would run into the verb.
    """
    match = _ANSWER_TYPE.search(question)
    if not match:
        return frozenset()
    found = []
    for word in match.groups():
        if word is None or word.lower() in _NOT_ANSWER_TYPE:
            break
        found.append(word.lower())
    return frozenset(found)


@dataclass(frozen=True)
class Artist:
    """Who "she" (or "he") and "her" (or "his") are in a bot about one artist."""

    #: The name the documents call them by most ("Sezim" for "Sezim Baktybekova").
    called: str
    #: Every word of their name, lower case. In a bot about them they name no
    #: topic, like "she": "Where is Sezim from?" is searched as "Where is she from?".
    name_words: frozenset[str]
    #: The pronoun the documents use for them: "she" or "he".
    pronoun: str = "she"


# Each pronoun's forms: subject, object, possessive.
_FORMS = {"she": ("she", "her", "her"), "he": ("he", "him", "his")}
# "she", "herself", "hers", and "her" with the word after it: "her" before a
# noun is a possessive ("her album" -> "Sezim's album"); before a function
# word or at the end it is an object ("who taught her to" -> "who taught Sezim to").
_SHE = re.compile(r"\b(she|herself|hers)\b", re.I)
_HER = re.compile(r"\bher\b(?:(?=[ \t]+(\w+)))?", re.I)
# "his" is possessive either way ("his album", "is it his?").
_HE = re.compile(r"\b(he|himself|him)\b", re.I)
_HIS = re.compile(r"\bhis\b", re.I)
_NOT_A_NOUN = frozenset(
    "to the a an and or but in on at of for with from about by as into up out over after before than so "
    "anything something anyone everything more most all again too very now back there then when while "
    "if that this is was well much enough anymore tho though today tonight yet ever".split()
)


def refer_to_artist(question: str, artist: Artist) -> str:
    """Read "she" and "her" ("he", "his") as the artist: "Where is she from?" -> "Where is Sezim from?"."""
    if artist.pronoun == "he":
        return _HE.sub(artist.called, _HIS.sub(artist.called + "'s", question))

    def her(match: re.Match) -> str:
        following = match.group(1)
        possessive = following is not None and following.lower() not in _NOT_A_NOUN
        return artist.called + "'s" if possessive else artist.called

    def she(match: re.Match) -> str:
        return artist.called + "'s" if match.group(1).lower() == "hers" else artist.called

    return _SHE.sub(she, _HER.sub(her, question))


def artist_as_pronoun(question: str, artist: Artist) -> str:
    """Read the artist's name as "she" (or "he"): "Is Sezim married?" -> "Is she married?".

    Every sentence of a biography names her, so her name makes any question
    resemble all of them; whether the documents answer is judged without it.
    """
    names = "|".join(re.escape(w) for w in sorted(artist.name_words, key=len, reverse=True))
    pattern = re.compile(rf"(?:(\w+)\s+)?\b(?:{names})(?:\s+(?:{names}))*\b(['’]s\b)?", re.I)
    subject, object_, possessive = _FORMS.get(artist.pronoun, _FORMS["she"])

    def pronoun(match: re.Match) -> str:
        before = match.group(1)
        if match.group(2):
            word = possessive
        elif before is None or before.lower() in _BEFORE_SUBJECT:
            word = subject  # "Where is Sezim from?", "Sezim grew up..."
        else:
            word = object_  # "Who taught Sezim?"
        return f"{before} {word}" if before is not None else word

    return pattern.sub(pronoun, question)


# Words after which a name is the subject: "is Sezim", "did Sezim", "when Sezim".
_BEFORE_SUBJECT = frozenset(
    "is was does did has had can could will would should may might where when how why what who which whom whose "
    "and but that if while".split()
)


@dataclass(frozen=True)
class Query:
    """A question ready for retrieval."""

    #: The question as the bot reads it: normalised, typos mended, "she" and
    #: "her" read as the artist ("Who is <artist>?" for a question about her as a whole).
    question: str
    #: The fan's previous question when this one is a follow-up that leans
    #: on it ("Was it successful?"); it is searched for too, with less weight.
    follow_up_of: str | None
    #: The kind of answer wanted ("date", "number", "name") or None.
    wants: str | None
    #: Words naming the kind of thing asked for ("cause" in "What cause...?").
    answer_type: frozenset[str] = frozenset()
    #: The artist "she" and "her" were read as, if the bot knows her.
    artist: Artist | None = None

    @property
    def name_words(self) -> frozenset[str]:
        """Words that are not search terms in this bot: the artist's name."""
        return self.artist.name_words if self.artist is not None else frozenset()

    def judged(self, text: str) -> str:
        """``text`` (the question or the one it follows) as the refusal is judged: her name read as "she"."""
        return artist_as_pronoun(text, self.artist) if self.artist is not None and self.artist.name_words else text


# "Tell me about her", "what do you know about them", "what's her story", "Sezim?":
# once the polite frame is off, nothing is left but the artist (or the band) and
# perhaps a word for her story as a whole. Searched as it stands, her name finds
# whichever sentence names her ("Sezim's debut album..."); what a fan wants is
# who she is, so it is asked that way.
_SUBJECT_NOUNS = frozenset("band group duo artist singer musician".split())
_THEY = frozenset("they them their themselves".split())
_EVERY_FORM = {"she": frozenset("she her hers herself".split()), "he": frozenset("he him his himself".split())}
_OVERVIEW_WORDS = frozenset(
    "who what is was are s the a an this about more story bio biography background life introduce introduction "
    "overview".split()
)


def overview_of(question: str, artist: Artist | None, follows_a_question: bool = False) -> str | None:
    """"Who is <artist>?" (or "Who are they?") for a question asking about her as a whole; else None.

    "She" and "her" are the artist, as everywhere in a bot about one artist;
    without an artist (a band), "they" are the band only when nothing was asked
    before ("Who are they?" after "Who mixed the album?" leans on that question).
    """
    found = [w.lower() for w in _WORD.findall(question)]
    if artist is not None:
        subject, pronouns = artist.name_words | _SUBJECT_NOUNS, _EVERY_FORM[artist.pronoun]
    else:
        subject, pronouns = _SUBJECT_NOUNS, (frozenset() if follows_a_question else _THEY)
    if not any(w in subject or w in pronouns for w in found):
        return None
    if not all(w in subject or w in pronouns or w in _OVERVIEW_WORDS for w in found):
        return None
    return f"Who is {artist.called}?" if artist is not None and artist.called else "Who are they?"


def build_query(
    question: str,
    history: list[dict] | None = None,
    spell: Callable[[str], str] | None = None,
    artist: Artist | None = None,
) -> Query:
    """Turn a question, already read by :func:`clean_question`, and the chat so far into a :class:`Query`.

    A follow-up such as "Was it successful?" names nothing the seeds can be
    searched for, so the fan's previous question is searched along with it.
    ``spell``, when given, mends typos in both (see :func:`bot.spelling.correct_typos`);
    with ``artist``, "she" and "her" in both are read as her. A question about her
    as a whole ("Tell me about her") is asked as "Who is <artist>?" and leans on
    nothing before it (see :func:`overview_of`).
    """
    question = plain_spelling(question)
    previous = _last_user_message(history)
    previous = plain_spelling(previous) if previous else previous
    if spell is not None:
        question = spell(question)
        previous = spell(previous) if previous else previous
    overview = overview_of(question, artist, follows_a_question=previous is not None)
    if overview is not None:
        question, previous = overview, None
    follow_up_of = previous if previous and _is_follow_up(question) else None
    if artist is not None:
        # Every mention of her, by pronoun or by any part of her name, in one form.
        question = refer_to_artist(artist_as_pronoun(question, artist), artist)
        if follow_up_of:
            follow_up_of = refer_to_artist(artist_as_pronoun(follow_up_of, artist), artist)
    return Query(
        question=question,
        follow_up_of=follow_up_of,
        wants=wanted_answer(question),
        answer_type=answer_type_words(question),
        artist=artist,
    )


#: Characters of the previous question searched with a follow-up; a pasted
#: novel in the history must not make every later question slow.
MAX_FOLLOW_UP_CHARS = 1000


def _last_user_message(history: list[dict] | None) -> str | None:
    if not isinstance(history, (list, tuple)):
        return None
    for message in reversed(history):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str) and content.strip():
                return clean_question(content[:MAX_FOLLOW_UP_CHARS])
    return None


def _is_follow_up(question: str) -> bool:
    """A question that leans on the conversation: it refers back, or is very short."""
    return bool(_ANAPHORA.search(question)) or len(_WORD.findall(question)) <= 3
