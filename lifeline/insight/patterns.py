"""The general pattern layer of intent recognition: constructions, not sentences.

Each intent is a handful of constructions built from word classes (verbs of connecting, nouns
for a person, verbs of leaving, words for the automated system...). A construction that is found
is then judged inside its clause: a negation just before it ("I don't need an agent", "no, don't
transfer me"), reported speech ("my husband wanted to cancel") or a hypothetical question ("how
would I close it, if I wanted to?") turns it into a *refusal*, which is evidence against the
intent rather than for it. The learned classifier (lifeline/insight/classifier.py) sees both signals.

Text is normalised first the way both Telnyx's and Whisper's transcripts need: lower case,
curly quotes, contractions expanded with or without the apostrophe ("dont", "im").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .labels import INTENTS

# --- normalisation -------------------------------------------------------------------------

_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    (r"\bcan'?t\b", "can not"), (r"\bcannot\b", "can not"), (r"\bwon'?t\b", "will not"),
    (r"\bshan'?t\b", "shall not"), (r"\bain'?t\b", "is not"),
    (r"\b(do|does|did|is|are|was|were|have|has|had|would|could|should|must|need)n'?t\b", r"\1 not"),
    (r"\bi'?m\b", "i am"), (r"\bi'd\b", "i would"), (r"\bi'll\b", "i will"), (r"\bi'?ve\b", "i have"),
    (r"\b(you|we|they)'re\b", r"\1 are"), (r"\b(you|we|they)'ll\b", r"\1 will"),
    (r"\b(you|we|they)'d\b", r"\1 would"), (r"\b(you|we|they)'ve\b", r"\1 have"),
    (r"\b(it|that|there|what|he|she)'s\b", r"\1 is"), (r"\blet's\b", "let us"),
    (r"\bgonna\b", "going to"), (r"\bwanna\b", "want to"), (r"\bgotta\b", "got to"),
    # a dropped g, as many callers say it and some writers spell it: "sayin'", "goin'", "nothin'"
    (r"\b(\w{2,}in)'(?!\w)", r"\1g"),
    # Scots and northern forms, as callers say them and recognisers write them down.
    (r"\bye\b", "you"), (r"\btae\b", "to"), (r"\bdinn(?:a|ae)\b", "do not"), (r"\bwinnae\b", "will not"),
    (r"\b(can|did|could|would|should|is|was|will|does|has|have|are|were)nae\b", r"\1 not"),
    (r"\b(can|could|would|did)na\b", r"\1 not"), (r"\bnae\b", "no"), (r"\bnaebody\b", "nobody"),
)
_CONTRACTION_RES = tuple((re.compile(p), r) for p, r in _CONTRACTIONS)
_CLAUSE_SPLIT = re.compile(r"[.!?;:,]+|\s+(?:but|so|because|though|although|however|otherwise)\s+")


# Recognisers split compounds ("some body") and write "too" for "to": join and mend before matching.
_ASR_MENDS = ((re.compile(r"\b(some|any|every|no) ?(body|one|won)\b"), r"\1\2"),
              (re.compile(r"\bnoone\b"), "no one"), (re.compile(r"\b(some|any|no|every)won\b"), r"\1one"),
              (re.compile(r"\btoo (the|a|an|my|your|some|any)\b"), r"to \1"))


def normalise(text: str) -> str:
    """Lower case, straight quotes, contractions expanded, other punctuation kept for clauses."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    for pattern, replacement in _CONTRACTION_RES:
        text = pattern.sub(replacement, text)
    for pattern, replacement in _ASR_MENDS:
        text = pattern.sub(replacement, text)
    text = re.sub(r"[\"()\[\]*_]+", " ", text)
    text = re.sub(r"-", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def clauses(text: str) -> list[str]:
    """The normalised text cut into clauses at punctuation and at contrastive conjunctions."""
    return _split_clauses(normalise(text))


def _split_clauses(line: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_SPLIT.split(line) if c.strip()]


# --- word classes ----------------------------------------------------------------------------

_QUALIFIER = (r"(?:bloody|damn|flipping|real|actual|live|living|proper|genuine|human|breathing|"
              r"flesh and blood|normal|regular)")
# Nouns for a person who works there, including ASR spellings Whisper gives on phone audio.
_PERSON_NOUN = (
    r"(?:person|persons|people|human|humans|human being|human beings|agent|agents|a gent|"
    r"somebody|someone|some one|anybody|anyone|any one|staff|member of staff|staff member|"
    r"team member|member of (?:the |your )?team|manager|managers|man ?ager|manger|supervisor|"
    r"supervisors|super ?visor|super visa|operator|operators|opera ?ter|representative|"
    r"representatives|rep|reps|represent ?a ?tive|advisor|adviser|advisors|advisers|colleague|"
    r"colleagues|customer (?:service|services|care|support)(?: team| agent| person| rep| advisor)?|"
    r"employee|associate|specialist|consultant|boss|(?:guy|lady|man|woman|chap|bloke) there|"
    r"(?:\w+ )?(?:handler|handlers|officer|officers|clerk|clerks|engineer|technician)|"
    r"(?:someone|somebody|anyone|anybody|a person) (?:senior|in charge|higher up|qualified)|"
    r"one of (?:the|your) (?:girls|lads|boys|ladies|gents|team|staff|people|humans|agents|advisors|advisers)|"
    r"real somebody|real someone|"
    r"your (?:team|people|staff|guys|lot)|(?:" + _QUALIFIER + r") (?:one|voice|being))"
)
# Someone wanted to come out ("I need somebody to come and measure up", "is there anyone who could
# pop round") asks for a visit: the caller wants a job done at their door, not a person on the line.
_VISIT = (r"(?:come|pop|call|nip|drop|get)\s+(?:round|over|out|by|in(?!\s+touch)|along|and|to (?:the|my|our|"
          r"us)|here|back out)\b")
_JOB_VERB = (r"(?:look|have a look|take a look|fix|measure|check|repair|service|inspect|collect|pick|clear|"
             r"unblock|replace|install|fit|read|assess|survey|quote|sort)")
# "I need someone to come round" and, as many say it, "someone to come fix the boiler"
_NOT_A_VISIT = (rf"(?!\s+(?:(?:who|that)\s+(?:can|could|will|would)\s+)?(?:to\s+)?(?:{_VISIT}|"
                rf"come\s+{_JOB_VERB}\b)|\s+(?:round|out|over(?! the phone))\b)")
# A person wanted at the caller's door, not on the line (LABELS.md: a person mentioned, not asked
# to speak with): someone sent round, an engineer got out, somebody to come and measure up. The
# model reads these as asking for a person, so the understanding layer caps that intent on them.
_TRADE_NOUN = (r"(?:engineer|engineers|technician|technicians|tech|fitter|fitters|plumber|electrician|"
               r"surveyor|inspector|assessor|installer|installers|mechanic|driver|van|crew|team|man|guy|"
               r"bloke|lad|lads)")
_VISITOR = (rf"(?:someone|somebody|anyone|anybody|one of your (?:\w+ )?(?:people|{_TRADE_NOUN})|"
            rf"(?:a|an|the|your|one of the)\s+(?:\w+\s+)?{_TRADE_NOUN})")
_PLACE = (r"(?:house|flat|home|property|place|site|address|door|office|shop|garden|farm|premises|unit|"
          r"building|block|yard|garage)")
_VISIT_REQUEST = re.compile(
    # "around" alone is as often "available" ("is there anybody around who can help"): sent only
    rf"\b(?:send|sending|get|getting)\s+{_VISITOR}\s+around\b|"
    rf"\b{_VISITOR}\s+(?:(?:who|that)\s+(?:can|could|will|would)\s+)?(?:to\s+)?(?:"
    rf"(?:come|coming|pop|popping|nip|nipping|drop|dropping|get|getting)\s+"
    rf"(?:a?round|over|out|by|along|back out|here)\b|"
    rf"come\s+(?:and\s+)?{_JOB_VERB}\b|"
    rf"(?:come|get)\s+(?:to|out to|round to|over to)\s+(?:the|my|our)\s+(?:\w+\s+)?{_PLACE}\b|"
    rf"(?:round|over|out)\b(?!\s+(?:there|of|the phone|in|at|on)\b)|"
    rf"to\s+(?:my|our|the)\s+(?:\w+\s+)?{_PLACE}\b|"
    rf"to\s+(?:visit|measure|survey|inspect)\b)")
# A line that speaks of the call itself may want the person on the line ("can someone come over the
# phone", "can someone come over and talk to me"): no visit is read in it.
_ON_THE_LINE = re.compile(r"\b(?:phone|line|call|talk|talking|speak|speaking|menu|machine|robot|system|"
                          r"explain)\b")
_DETERMINER = r"(?:(?:a|an|the|some|your|one of your|one of the|any|a member of|any of your|anyone from|" \
              r"someone from|somebody from|a different|another)\s+)?"
PERSON = rf"{_DETERMINER}(?:{_QUALIFIER}\s+){{0,2}}(?:{_PERSON_NOUN}|(?:\w+\s+)?(?:team|department|desk))\b"
# A person named by what they do there ("whoever handles refunds", "the fella who is doing the
# polishing", "the lady in charge"). Asked for only after a verb of talking or connecting: after
# "like" or "need" it is as often someone mentioned ("just like the man who fitted it said").
_NAMED_PERSON = (r"(?:whoever|(?:the|a|that|this)\s+(?:guy|lady|man|woman|chap|bloke|fella|fellow|gentleman|"
                 r"gent)(?=\s+(?:who|that|in charge)\b))")
_ASKED_PERSON = rf"(?:{PERSON}|{_NAMED_PERSON})"
_CONNECT_VERB = (r"(?:put|get|transfer|connect|connecting|transferring|pass|send|patch|switch|forward|hand|"
                 r"route|redirect|pop|chuck|bung|stick|"
                 r"take|bring|escalate|move|direct|sent|passed)")
_ME = r"(?:me|us|this call|my call|this|the call)"
_THROUGH = r"(?:through|thru|true|threw|straight through)"
_TALK_VERB = r"(?:speak|speaking|talk|talking|chat|chatting|deal|dealing|" \
             r"(?:have|get|grab|want|like|need|of) a (?:(?:quick|brief|short|little|wee) )?word|get hold|" \
             r"get through|reach|discuss this|discuss it|go through this|explain this|explain it)"
_WANT = (r"(?:want|wanted to have|need|needs|would like|like|would prefer|prefer|would rather have|"
         r"any chance of|chance of|could do with|looking for|"
         r"rather have|demand|demanding|request|requesting|insist on|ask for|asking for|give me|"
         r"get me|find me|fetch me|is there|are there|there must be|where is|where are|bring me|"
         r"can i have|can i get|could i have|could i get|may i have|i will take)")

_COMPANY = r"(?:you|you lot|you guys|you people|your (?:bank|company|firm|business|lot)|" \
           r"this (?:bank|company|firm|place|outfit|lot)|the bank)"
_RELATION = (r"(?:account|accounts|contract|membership|subscription|plan|policy|service|services|everything|"
             r"relationship|business|broadband|package|custom|mortgage|savings|tariff)")
_COMPETITOR = (r"(?:another|a different|a new|a better|a rival|a competitor|your competitors?|"
               r"the competition|competitors?|other)\s*(?:bank|provider|company|supplier|network|firm|"
               r"insurer|lender|building society|one)?")

_SYSTEM = (r"(?:robot|robots|bot|bots|machine|machines|computer|computers|automated (?:system|service|"
           r"voice|line|thing|menu|assistant)|automatic (?:system|voice)|recording|recorded (?:voice|"
           r"message)|answering machine|voice recognition|speech recognition|menu|menus|options|phone tree|"
           r"this system|the system|your system|this thing|auto attendant|virtual assistant|ai|"
           r"artificial intelligence|chat ?bot|press(?:ing)? (?:buttons|numbers|keys)|automated \w+)")

_SYSTEM_WORD = (r"(?:stupid\s+|bloody\s+|damn\s+|automated\s+)?(?:robot|robots|machine|bot|computer|menu|"
                r"menus|system|recording|options|voice|phone tree|automated system|maze|loop)\b"
                r"(?!\s+(?:number|option|one|two|three))")
_COMPLAINT_WORD = (r"\b(?:not|never|again|hate|sick|tired|enough|stop|keeps?|useless|stupid|rubbish|"
                   r"pointless|waste|same|circles|nothing|no)\b")


@dataclass(frozen=True)
class Construction:
    """One general construction of an intent; `carries_negation` if its own words negate."""

    pattern: re.Pattern[str]
    carries_negation: bool = False
    only_refutes: bool = False  # a topic word: refused it counts against, otherwise it says nothing
    unless: re.Pattern[str] | None = None  # words anywhere in the line that make it say nothing


def _c(pattern: str, carries_negation: bool = False, only_refutes: bool = False,
       unless: str | None = None) -> Construction:
    return Construction(re.compile(pattern), carries_negation, only_refutes,
                        re.compile(unless) if unless else None)


# A review promised in praise ("I'll leave you a review, a proper good one") is thanks, not a threat.
# The praise often sits in the next clause, so the rest of the line is searched; a negation anywhere
# keeps the threat ("and it won't be a good one"), and praise before the promise is sarcasm's place
# ("oh great, I'll be telling everyone online").
_PRAISE = (r"^(?!.*\b(?:not|never|no)\b).*\b(?:post|posting|write|writing|leave|leaving|put|putting|give|"
           r"giving)\b.*\b(?:good|great|glowing|positive|lovely|brilliant|excellent|amazing|fantastic|"
           r"cracking|wonderful|nice|(?:five|5) stars?)\b")


CONSTRUCTIONS: dict[str, tuple[Construction, ...]] = {
    "wants_person": (
        # put / get / transfer / connect me (through) (to / with) <person>, or just "transfer me"
        _c(rf"\b{_CONNECT_VERB}\s+{_ME}\s+(?:(?:through|over|across|on|along|up)\s+)?"
           rf"(?:(?:to|with|onto)\s+{_ASKED_PERSON}|through\b|over to\b|to (?:someone|somebody)\b)"),
        _c(r"\b(?:transfer|connect|escalate|forward|redirect)\s+(?:me|us|this|my call|the call)\b"),
        _c(rf"\b(?:transfer|connect|put)\s+(?:me\s+)?(?:to|through to|with)\s+{_ASKED_PERSON}"),
        _c(r"\b(?:be|get|getting|being)\s+(?:put|passed|transferred|connected|sent|"
           rf"put back)\s+(?:{_THROUGH}\s+)?(?:to|with)\s+{_ASKED_PERSON}"),
        _c(rf"\b{_CONNECT_VERB}\s+{_ME}\s+{_THROUGH}\b"),
        _c(rf"\b(?:get|put|have|bring)\s+{PERSON}\s+on\b(?:\s+(?:the line|the phone|please|now))?"),
        _c(rf"\bget hold of\s+{PERSON}|\b(?:get|getting) through to\s+{PERSON}"),
        _c(r"\b(?:is there|there is|is there really|are there|there are)\s+(?:\w+\s+)?(?:nobody|no one|"
           r"noone|anybody|anyone|someone|somebody|no human|no person|not a person)\s+(?:i|we)\s+"
           r"(?:can|could)\s+(?:talk|speak)", carries_negation=True),
        # speak / talk / deal with <person>
        _c(rf"\b{_TALK_VERB}\s+(?:to|with)\s+{_ASKED_PERSON}"),
        # "I need to speak with a <word>": asking to speak with *a* something at a call centre is
        # asking for a role, whatever the noun; the recogniser mangles exactly that noun
        # ("a renent of it", "a remember the name"), so the frame carries it.
        _c(r"\b(?:need|want|would like|like|wish|have got) to (?:speak|talk|chat|have a word) (?:to|with) "
           r"(?:a|an) (?!(?:robot|machine|computer|bot|recording|menu|system)\b)\w+"),
        # want / need / give me <person>; not a person wanted at the caller's door (_VISIT)
        _c(rf"\b{_WANT}\s+(?:to\s+(?:have|get)\s+)?{PERSON}{_NOT_A_VISIT}"),
        # "agent!", "operator please", "a real person now"
        _c(rf"^(?:(?:just|please|yes|yeah|ok|okay|now|hello|um|uh|er|transfer|transfer me)\s+)*(?:{PERSON}|"
           r"transfer)(?:\s+(?:please|now|right now|then|thanks|thank you|already|immediately))*$"),
        # a person asked to ring back: "can somebody from billing call me"
        _c(rf"\b(?:can|could|will|would|please|have|get)\s+{PERSON}(?:\s+(?:from|in|at|on)\s+(?:\w+\s+){{1,3}}?)?"
           rf"\s*(?:ring|call|phone|contact|get back to)\s+(?:me|us)\b"),
        # a person asked for by the kind of help: "someone who can actually help"
        _c(rf"\b(?:someone|somebody|anyone|anybody|a person|a human)\s+(?:who|that)\s+"
           rf"(?:can|could|will|would|actually|knows|understands)(?!\s+{_VISIT})"),
    ),
    "leave_or_cancel": (
        _c(rf"\b(?:close|closing|closed down|cancel|cancelling|canceling|terminate|terminating|end|ending|"
           rf"shut|shutting|quit|quitting|leave|leaving|ditch|ditching|drop|dropping|pull|pulling)\s+"
           rf"(?:down\s+)?(?:my|our|the|this|all my|all of my|every)?\s*(?:whole\s+|entire\s+|current\s+)?"
           rf"(?:bank\s+|current\s+|joint\s+|savings\s+)?{_RELATION}\b"),
        _c(rf"\b(?:switch|switching|move|moving|go|going|take|taking|transfer|transferring|bank|banking|"
           r"shop|shopping|run|running|went)\b(?:\s+\w+){0,3}?\s+(?:elsewhere|somewhere else|"
           rf"to\s+{_COMPETITOR}|over to\s+{_COMPETITOR}|with\s+{_COMPETITOR})"),
        _c(r"\b(?:take|taking|move|moving)\s+my\s+(?:business|money|custom|accounts?|savings)\s+"
           r"(?:elsewhere|away|somewhere else|out)"),
        _c(rf"\b(?:leave|leaving|quit|quitting|ditch|ditching|dump|dumping|done with|finished with|"
           rf"through with|walk away from|walking away from)\s+{_COMPANY}\b"
           # "leave you a review", "leave you my number": something left with the firm
           rf"(?!\s+(?:a|an|my|the|some|our|this)\b)"),
        _c(r"\b(?:find|finding|get|getting|look for|looking for|go to|going to|join|joining|"
           r"try)\s+(?:myself\s+|us\s+)?(?:another|a different|a new|a better|a proper)\s+(?:bank|provider|"
           r"company|supplier|network|firm|insurer|lender)"),
        _c(rf"\b(?:never|not)\s+(?:going to\s+|ever\s+|be\s+)?(?:use|using|bank with|banking with|deal with|"
           rf"dealing with|do business with|doing business with|come back|coming back|renew|renewing|"
           rf"stay with|staying with|staying|stay)\b(?:\s+\w+){{0,3}}?(?:\s+again|\s+{_COMPANY}|$)",
           carries_negation=True),
        _c(r"\byou (?:have |are about to |are going to )?(?:just )?(?:lost|lose) (?:a|me as a|my|another|"
           r"one) (?:customer|client)"
           r"|\byou have lost me\b|\blost (?:yourself|yourselves) a customer\b"),
        _c(r"\b(?:switch|switching|switched|change|changing|changed|move|moving|moved|swap|swapping)\s+"
           r"(?:my |our )?(?:\w+ )?(?:banks|providers?|suppliers?|networks?|insurers?|lenders?|companies|"
           r"carriers?|airlines?)\b"),
        _c(rf"\b(?:moved|switched|transferred|taken|ported)\b(?:\s+\w+){{0,2}}?\s+(?:to\s+{_COMPETITOR}|elsewhere|"
           rf"somewhere else|out)"),
        _c(rf"\bnever\s+(?:\w+\s+){{1,3}}?(?:with|from|at|through|by)\s+{_COMPANY}\s+(?:again|ever again)\b",
           carries_negation=True),
        _c(r"\b(?:close|closing|closed|cancel|cancelling|cancelled|switch|switching|leave|leaving|quit|"
           r"quitting)\b", only_refutes=True),
        _c(r"\bi am (?:leaving|off|out|switching|walking|gone|done)\b"
           r"(?!\s+(?:for|to the|in|on|at|with the))"),
    ),
    "legal_or_complaint": (
        _c(r"\b(?:lawyer|lawyers|solicitor|solicitors|(?<!power of )attorney|attorneys|barrister|"
           r"legal action|legal advice|legal team|legal route|legal proceedings|sue|suing|sued|"
           r"take you to court|see you in court|small claims|court|courts|ombudsman|ombudsmen|ombuds man|"
           r"regulator|regulators|fca|financial conduct authority|trading standards|watchdog|ofcom|ofgem|"
           r"ofwat|cfpb|better business bureau|consumer rights|citizens advice|attorney general|"
           r"class action|tribunal|compensation claim)\b"),
        _c(r"\b(?:make|making|file|filing|lodge|lodging|raise|raising|log|logging|put in|putting in|submit|"
           r"submitting|register|registering|open|opening|write|writing|send|sending|escalate|escalating|"
           r"start|starting|take out)\s+(?:a|an|my|this|the|one)?\s*(?:formal|official|written|proper|"
           r"serious|big|strongly worded|detailed)?\s*(?:complaint|complaints|grievance|"
           r"letter of complaint)"),
        _c(r"\b(?:formal|official|written)\s+(?:complaint|grievance)"),
        _c(r"\b(?:write|writing|contact|contacting|go|going|report|reporting|complain|complaining|take|"
           r"taking (?:this|it|you))\s+to\s+(?:my|the|your|our)?\s*(?:local\s+)?(?:mp|member of parliament|"
           r"councillor|congressman|congresswoman|senator|(?:\w+\s+){0,3}(?:authority|commission|regulator|"
           r"ombudsman|standards|watchdog))\b"),
        _c(r"\b(?:complaint|complaints|complain|complained|grievance|ombudsman|lawyer|solicitor)\b",
           only_refutes=True),
        _c(r"\b(?:i|we)\s+(?:want|wish|would like|am going|are going|will|intend|plan|need|have)\s+to\s+"
           r"(?:complain|report)\b"),
        _c(r"\b(?:complain|complaining|report|reporting|reported)\s+(?:you|this|your \w+|about you|"
           r"about this)?\s*(?:to|with)\s+(?:the|your|someone|somebody|a|an)?\s*(?:\w+\s+)?(?:head office|"
           r"authorities|authority|regulator|ombudsman|board|press|papers|council|bank|top|chief executive|"
           r"ceo|director|higher up|higher ups)"),
        # The police only with the firm as the object: "I have reported it to the police" is a
        # caller telling of a theft or a fraud (calm bad news); "I will report you to the police" threatens.
        _c(r"\b(?:report|reporting|reported)\s+(?:you|your (?:company|firm|shop|business|lot)|"
           r"this (?:company|firm|shop|business|lot)|you lot)\s+to\s+the\s+police\b"),
        _c(r"\b(?:go|going|went|talk|talking|write|writing|speak|speaking)\s+to\s+(?:the\s+)?"
           r"(?:press|papers|newspapers|local paper|news|media|bbc|tv|telly|journalists?)\b"),
        _c(r"\b(?:post|posting|write|writing|leave|leaving|put|putting|tell|telling|share|sharing|"
           r"give|giving)\b(?:\s+\w+){0,4}?\s+(?:review|reviews|trustpilot|twitter|facebook|tiktok|"
           r"social media|online|on x|everyone i know|the whole world)\b", unless=_PRAISE),
        _c(r"\b(?:going|go|put|putting|post|posting|be|blast|blasting|plaster|plastering)\b(?:\s+\w+){0,3}?"
           r"\s+(?:on|all over|onto)\s+(?:social media|twitter|facebook|tiktok|trustpilot|instagram|"
           r"the news|the internet|online|x)\b"),
        _c(r"\b(?:one|1|zero|no) star\b|\b(?:bad|terrible|awful|scathing|honest|negative) review"),
    ),
    "bot_complaint": (
        _c(r"\b(?:talking|speaking|talk|speak|chatting|chat|arguing|argue|stuck|dealing)\s+(?:to|with)\s+"
           r"(?:a|an|this|the|some|your|another)?\s*(?:stupid|bloody|damn|dumb|useless|automated|automatic|"
           r"silly|blooming|flipping|talking|pre ?recorded)?\s*(?:robot|machine|computer|bot|recording|"
           r"answering machine|automated system|system|menu|ai|chat ?bot)\b"),
        # "this stupid menu", "can't keep up with your machine": at the end of a clause or before a
        # complaint word. "your system" and "your computer" need the complaint word: at a clause's
        # end they are mostly a calm caller naming the firm's records ("so it doesn't stay on your
        # system"), where "your machine" or "your menu" can only be the line itself.
        _c(rf"\b(?:stupid|useless|bloody|damn|damned|dumb|pointless|rubbish|annoying|ridiculous|endless|"
           rf"another|silly|hopeless|infuriating|awful|terrible|horrible|blasted|flipping|blooming|"
           rf"automated|this|these|your(?!\s+(?:system|computer)\b)|crap|crappy|idiotic)\s+{_SYSTEM_WORD}"
           rf"(?=.*{_COMPLAINT_WORD}|$)", carries_negation=True),
        _c(rf"\byour\s+{_SYSTEM_WORD}(?=.*{_COMPLAINT_WORD})", carries_negation=True),
        _c(r"\b(?:you|(?:this|the|your)\s+(?:\w+\s+)?(?:system|machine|robot|menu|thing|computer|bot|"
           r"recording))\s+(?:do not|does not|can not|"
           r"will not|never|is not|are not|did not|just does not|clearly does not|still does not|"
           r"keeps not|simply can not|obviously does not)\s+(?:understands?|understanding|gets?|hears?|"
           r"hearing|listens?|listening|recogni[sz]es?|recogni[sz]ing|catch|catches|works?|working|helps?|"
           r"follows?|picks? up)"
           r"(?:\s+(?:me|what|a word|anything|my|the|this))?", carries_negation=True),
        _c(r"\b(?:round|around) (?:and (?:round|around) )?in (?:circles|a circle|a loop)|"
           r"\b(?:going|go|sent|sending|taken|taking) (?:me )?(?:round|around) (?:and (?:round|around)|in|"
           r"the same)|\bstuck in (?:this|the|your|a|an|some)\s+(?:\w+\s+)?(?:maze|loop|menu|system|cycle|"
           r"phone tree)|\bsame (?:loop|menu|options|message|question|questions) (?:again|over)|\b(?:keeps?|"
           r"kept|keeping|keep on) (?:asking|repeating|saying|sending|putting|looping|taking|bringing|"
           r"telling)(?: me)?(?: back)?(?: the same| to the)?|\bloop(?:ing)? (?:me )?(?:back|round|around)|"
           r"\bback to the (?:start|beginning|main menu)"),
        _c(r"\bnone of (?:the|these|those|your) (?:options|choices|numbers|buttons)|\bno option for\b|"
           r"\bnot (?:one|any) of (?:the|these|those|your) options|\boptions (?:do not|does not|never) "
           r"(?:fit|apply|cover|match|include)|\bnot an option\b", carries_negation=True),
        _c(rf"\b(?:hate|hated|loathe|detest|sick of|tired of|fed up with|done with|had enough of|"
           r"enough of|enough with|can not stand|no more)\s+(?:these|this|the|your|all these|all this|"
           rf"talking to|pressing|dealing with|automated|speaking to)?\s*(?:\w+\s+)?{_SYSTEM}",
           carries_negation=True),
        _c(r"\bi (?:am not|do not want to|will not|refuse to|am not going to) (?:talk|speak|talking|"
           r"speaking|deal|dealing) (?:to|with) (?:a|an|this|the|some)?\s*(?:stupid\s+|bloody\s+)?"
           r"(?:robot|machine|computer|bot|recording|automated|system)", carries_negation=True),
        _c(r"\b(?:stop|quit) (?:asking|repeating|making me|saying)\b|\bwhy (?:do|does) (?:it|this|the "
           r"(?:system|machine|menu)) keep\b"),
        _c(r"\b(?:not|never) (?:a|another|some) (?:robot|machine|computer|bot|recording)\b",
           carries_negation=True),
    ),
}

# --- what turns a construction into a refusal ------------------------------------------------

_NEGATION = re.compile(r"\b(?:not|no|never|nothing|without|none|neither|nor|nope|nah|rather not|"
                       r"no need|no longer|forget)\b")
# Rhetorical questions: "why can't I just talk to a person", "can't I speak to someone".
_RHETORICAL = re.compile(r"^(?:why|how come)\b|\b(?:can|could|will|would|is|do|does) not (?:i|you|we|there|"
                         r"anybody|anyone|someone|somebody)\b|\bnot (?:even|just) (?:let|put|give)\b")
# The same question with the negation after its subject, as British, Irish and Scottish callers
# ask: "can you not just connect me", "could I not speak to somebody", "is there no way to talk to
# a person", "is it not possible to...", Scots "can ye no put me through" ("ye no" is "can't you",
# so it asks with or without "just"). Not "can you not transfer me", which in British English asks
# the system to stop, nor "is there no need to...". Only the question's own negation is forgiven:
# a "don't", "without" or "no need" after it still refuses (see _refused).
_NEGATIVE_QUESTION = re.compile(
    r"^(?:(?!how\b)\w+\s+){0,3}?(?:can|could|will|would|is|are) (?:(?:i|we|there) (?:not|no)(?! need\b)|"
    r"you (?:not|no) just|you no|it not possible|you not going to)\b")
# Reported speech: what someone else said or wanted is not the caller's own request.
_THIRD_PARTY = (r"(?:he|she|they|husband|wife|son|daughter|friend|mother|father|mum|mom|dad|partner|"
                r"brother|sister|neighbour|neighbor|colleague|boss|uncle|aunt|auntie|cousin|niece|nephew|"
                r"grandad|granddad|grandpa|grandma|gran|nan|nana|grandson|granddaughter|flatmate|"
                r"roommate|carer|family)")
_REPORTED = re.compile(
    rf"\b(?:{_THIRD_PARTY}|lady|man|guy|woman|gentleman|somebody|someone|agent|"
    r"advisor|adviser|person|you|it|letter|email|website|app|leaflet)\s+"
    r"(?:always\s+|once\s+|even\s+|just\s+|still\s+|actually\s+|\w+ly\s+)?(?:said|says|told|tells|"
    r"wanted|wants|suggested|suggests|mentioned|mentions|asked|asks|thought|thinks|reckoned|reckons|"
    r"advised|advises|recommended|recommends|threatened|threatens|was going|is going|keeps saying|"
    r"keeps telling|kept telling|keeps on at|"
    r"kept saying|insisted|insists)\b|\b(?:i|we) (?:was|were) (?:going|about|planning) to\b|"
    r"\b(?:i|we) would have\b|"
    # a course the caller weighed and did not take: "I did think about going to the ombudsman"
    r"\b(?:i|we) (?:did think|thought|had thought|did consider|considered|had considered)\s+"
    r"(?:about\s+|of\s+)?(?:\w+\s+){0,4}$|"
    # a relative's past wish, not staff's ("the agent was ready to put me through" is no report)
    rf"\b{_THIRD_PARTY} was (?:all for|set on|keen on|ready to|thinking of)\b|"
    # a construction whose subject is someone else ("my wife keeps saying we should move", "my son
    # keeps telling me to switch"); the caller's own words have "I", "you" or nothing
    rf"\b(?:my|our|his|her|their)\s+(?:\w+\s+)?{_THIRD_PARTY}\s*$|^(?:he|she|they)\s*$")
_HYPOTHETICAL = re.compile(
    r"\b(?:if|whether|in case|unless|what happens|what would happen|how (?:do|does|can|could|would|should|"
    r"long does|much does|long would|long will) (?:i|we|one|you|it)|is it possible|am i able|"
    r"where (?:do|can|should|would) (?:i|we)|what is the (?:address|email|number|process|procedure)|"
    r"who do i|is there a (?:fee|charge|penalty|form|way))\b")
# "if you could put me through, that'd be great" asks; "if I need an agent, what do I press" asks
# how. "if you / someone could" right before the construction is a polite request when the "if"
# opens the clause or follows a polite frame ("I'd be grateful if", "I wonder if"); after anything
# else it stays a condition, a question or a report: "what happens if you can transfer me", "even
# if you could put me through I wouldn't bother", "I asked if you could transfer me", "as if you could".
_POLITE_IF = re.compile(
    r"(?:^(?:(?:hi|hello|hiya|yes|yeah|ok|okay|so|right|well|um|uh|er|and|oh|now|please|morning|"
    r"good morning|good afternoon)\s+)*|\b(?:grateful|thankful|obliged|appreciate it|appreciate|great|"
    r"lovely|helpful|good|brilliant|perfect|nice|happy|wonder|wondering|asking|see|know)\s+)"
    r"if (?:you|yous|youse|ya|u|someone|somebody|anyone|anybody) (?:could|can|would|will)"
    r"(?: (?:just|please|kindly|possibly|perhaps|maybe|actually|um|uh|er))* $")
# Past, finished matters: "my complaint was resolved", "we sorted it".
_SETTLED = re.compile(r"\b(?:was|were|has been|have been|got|been|is now|is all|all)\s+(?:resolved|sorted|"
                      r"settled|dealt with|closed|upheld|fixed|handled)\b|\b(?:decided|chose|"
                      r"choose) to stay\b")
_MAIN_CLAUSE = re.compile(r"\b(?:i|we) (?:am|are|will|shall|would|have got to|have to|am going to|"
                          r"are going to)\b(?! not\b)|\bthen\b|\bi will\b")
_SELF_ROLE = re.compile(r"\b(?:i am|i work as|we are|this is) (?:a|an|the)\s+(?:\w+\s+)?$")
# A polite request to hear the menu again is using the menu, not complaining about it (LABELS.md:
# "a calm 'sorry, could you repeat that'"); without it the learned model reads "options ... again"
# as a complaint.
_MENU_REQUEST = re.compile(
    r"^(?:(?:sorry|excuse me|pardon|hello|yes|ok|okay|um|er)\s+)*(?:(?:could|can|would|"
    r"will) you\s+(?:please\s+)?(?:repeat|read|say|go through|give me|tell me|list)\b.*\b(?:again|once more|"
    r"one more time)|(?:(?:could|can|would|will) you\s+)?(?:please\s+)?repeat (?:that|it|the options|"
    r"the menu)(?: please)?$|(?:please\s+)?(?:repeat|say) (?:that|it|the options|the menu|them) again|pardon|"
    r"say again|come again)\b")
_WINDOW = 4  # words before a construction in which a negation scopes over it
_HYPOTHETICAL_INTENTS = ("leave_or_cancel", "legal_or_complaint")


@dataclass(frozen=True)
class PatternHits:
    """Per intent: a construction asserted it (1.0), was refused (-1.0), or nothing (0.0)."""

    signals: dict[str, float]
    matched: dict[str, str]
    visit: bool = False  # a person wanted at the caller's door (_VISIT_REQUEST), not on the line

    def asserted(self, intent: str) -> bool:
        """True when a construction of this intent fired un-negated."""
        return self.signals.get(intent, 0.0) > 0


def _hypothetical(before: str) -> bool:
    """A question or condition scopes over the construction, unless a main clause follows it.

    "if I wanted to close it, how would I" asks; "if this isn't fixed I am moving banks" threatens:
    after the condition, a first-person future or "then" starts the main clause.
    """
    cues = list(_HYPOTHETICAL.finditer(before))
    return bool(cues) and not _MAIN_CLAUSE.search(before[cues[-1].end():])


def _refused(intent: str, clause: str, start: int, construction: Construction) -> bool:
    before = clause[:start]
    if _REPORTED.search(before):
        return True
    if intent in _HYPOTHETICAL_INTENTS and (_hypothetical(before) or _SETTLED.search(clause)):
        return True
    if (intent == "wants_person" and _HYPOTHETICAL.search(before) and re.search(r"\bif\b", before)
            and not _POLITE_IF.search(before)):
        return True  # "if I need an agent, what do I press" asks how, not for one
    if intent == "legal_or_complaint" and _SELF_ROLE.search(before):
        return True  # "I'm a solicitor calling about probate": a job, not a threat
    if construction.carries_negation or _RHETORICAL.search(clause):
        return False
    question = _NEGATIVE_QUESTION.search(before)
    window = " ".join(before[question.end() if question else 0:].split()[-_WINDOW:])
    return bool(_NEGATION.search(window))


def find_intents(text: str) -> PatternHits:
    """Which intents' constructions the text asserts, and which it refuses."""
    signals = dict.fromkeys(INTENTS, 0.0)
    matched: dict[str, str] = {}
    line = normalise(text)
    # A construction's `unless` reads the whole line, so it is settled once, not once per clause.
    live = {intent: [c for c in constructions if c.unless is None or not c.unless.search(line)]
            for intent, constructions in CONSTRUCTIONS.items()}
    clauses = _split_clauses(line)
    for clause in clauses:
        for intent, constructions in live.items():
            for construction in constructions:
                for found in construction.pattern.finditer(clause):
                    if _refused(intent, clause, found.start(), construction):
                        if signals[intent] == 0.0:
                            signals[intent] = -1.0
                        continue
                    if construction.only_refutes:
                        continue
                    signals[intent] = 1.0
                    matched.setdefault(intent, found.group(0).strip())
        if signals["bot_complaint"] == 0.0 and _MENU_REQUEST.search(clause):
            signals["bot_complaint"] = -1.0
    return PatternHits(signals, matched, visit=_visit_request(line, clauses))


def _visit_request(line: str, clauses: list[str]) -> bool:
    """A person wanted at the caller's door, in the caller's own words, in a line not about the call."""
    if _ON_THE_LINE.search(line):
        return False  # "can someone come to the phone, or send someone round": the model decides
    # "you said you'd send an engineer out" reports a promise; it asks for nothing now
    return any(not _REPORTED.search(clause[:found.start()])
               for clause in clauses for found in _VISIT_REQUEST.finditer(clause))


def asserted_phrase(pattern: re.Pattern[str], text: str) -> str | None:
    """The first match of a user's phrase that is not negated, reported or hypothetical."""
    generic = Construction(pattern)
    for clause in clauses(text):
        for found in pattern.finditer(clause):
            if not _refused("wants_person", clause, found.start(), generic):
                return found.group(0).strip()
    return None
