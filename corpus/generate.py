"""Write corpus/train/utterances-generated.yaml: breadth for training, from LABELS.md alone.

Hand-written lines teach the models a few hundred phrasings; callers use thousands. This script
crosses templates (how people put a request, a threat, a complaint, a piece of bad news) with
slot fillers (who they ask for, what they are cancelling, which regulator, how cross they are,
which opener and tail they use) and labels each line from the parts it was built from, the way
LABELS.md defines them. It also writes each family's look-alikes that must carry *no* intent:
refusals ("I don't need an agent"), reports of what someone else said, routine cancellations,
calm questions, calm callers with bad news. Every line may get a recogniser-style twin
(homophones, split words, dropped small words: what Whisper tiny.en writes on phone audio),
labelled for what the caller meant.

Deterministic: a fixed seed and sorted output, so the same script always writes the same file
(tests/test_understand.py checks it, and the trained weights depend on it).

    python corpus/generate.py            # writes corpus/train/utterances-generated.yaml
    python corpus/generate.py --check    # exit 1 if the committed file is not what it would write

Written for the train split only; nothing here was taken from dev or the frozen test.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEED = 20261130
OUT = Path(__file__).resolve().parent / "train" / "utterances-generated.yaml"
LEVELS = ("calm", "annoyed", "angry")


@dataclass(frozen=True)
class Line:
    """One generated labelled line."""

    text: str
    intents: tuple[str, ...]
    frustration: str
    note: str


def worst(*levels: str) -> str:
    """The strongest of several frustration levels."""
    return max(levels, key=LEVELS.index)


# --- slot fillers (each mood-bearing filler carries its frustration level) ------------------

OPENERS = ["", "", "", "Hi, ", "Hello, ", "Yeah hi, ", "Right, ", "Look, ", "Listen, ", "Sorry, ",
           "Okay, ", "Um, ", "Erm, ", "Hiya, ", "Good morning, ", "Afternoon, ", "Yes, ", "Yeah, ",
           "Hello there, ", "Excuse me, ", "Morning, ", "Hey, ", "Ok so ", "Er, "]
PERSON = ["someone", "somebody", "a person", "a real person", "an actual person", "a human",
          "a human being", "one of your staff", "a member of staff", "an agent", "a live agent",
          "a representative", "a rep", "an advisor", "an adviser", "the manager", "a manager",
          "a supervisor", "someone in charge", "anybody at all", "one of your team", "an operator",
          "customer services", "someone in billing", "the claims team", "someone who can help",
          "one of your colleagues", "a proper person", "a team member", "the complaints team",
          "someone from accounts", "the person dealing with my case", "anyone", "a real human",
          "someone senior", "a customer service agent", "the fraud department", "a specialist",
          "the technical team", "someone on the phone", "an actual human being", "your staff",
          "a living person", "whoever is on duty", "a consultant"]
CALM_TAILS = ["", "", "", " please", " thanks", " cheers", " if that's possible", " thank you",
              " if you don't mind", " when you get a chance", " please, it's about my bill",
              " about a payment", " about my order", " about my account", " about a delivery",
              " regarding my claim", " if there's one free", " please, it's quite urgent",
              " for a quick question", " love", " mate", " ta"]
ANNOYED_TAILS = [" I've been waiting ages", " I've been on hold for forty minutes",
                 " this is taking forever", " I've already explained this twice",
                 " this has gone on long enough", " I'm getting nowhere here",
                 " I'm running out of patience", " it's the third time I've called",
                 " it's been weeks", " come on", " honestly", " I haven't got all day"]
ANGRY_TAILS = [" this is ridiculous", " this is absolutely disgraceful", " I'm furious",
               " right now, I'm livid", " this is a complete joke", " you people are hopeless",
               " I've had it up to here", " now, I'm sick of this", " this is beyond a joke",
               " before I lose it completely", " this is outrageous"]


def tail() -> list[tuple[str, str]]:
    """Endings with the frustration each carries."""
    return ([(t, "calm") for t in CALM_TAILS] + [(t, "annoyed") for t in ANNOYED_TAILS]
            + [(t, "angry") for t in ANGRY_TAILS])


ASK_PERSON = [
    "can you put me through to {p}", "could you connect me to {p}", "can I speak to {p}",
    "could I talk to {p}", "I'd like to speak to {p}", "I'd like to speak with {p}",
    "I want to talk to {p}", "I need to speak to {p}", "I need {p}", "let me speak to {p}",
    "put me on to {p}", "get me {p}", "is there {p} I can talk to", "have you got {p} I can speak to",
    "can I have a word with {p}", "I'd rather deal with {p}", "I'd prefer to talk to {p}",
    "transfer me to {p}", "pass me over to {p}", "can you get {p} on the line",
    "I'd like to be put through to {p}", "can I be transferred to {p}", "connect me with {p}",
    "would it be possible to speak to {p}", "is it possible to talk to {p}",
    "I want to be connected to {p}", "put me through to {p}", "can you find me {p}",
    "I'd rather speak to {p} than this thing", "just give me {p}", "can {p} call me back",
    "could {p} ring me back", "I need to get hold of {p}", "how do I get through to {p}",
    "any chance of speaking to {p}", "I'd really like a word with {p}", "can I chat to {p}",
    "put {p} on", "is {p} available", "I must speak to {p}", "send me through to {p}",
    "please put me through to {p}", "I'm after {p}", "can you pop me through to {p}",
    "I just want to talk to {p}", "I'm trying to reach {p}", "I would like {p} to help me",
    "can I not just talk to {p}", "why can't I just speak to {p}", "I'd sooner talk to {p}",
]
ASK_TERSE = ["transfer me", "put me through", "connect me", "agent", "agent please", "human please",
             "representative", "operator", "speak to someone", "person please", "real person",
             "a person", "staff please", "manager", "supervisor now", "talk to a human",
             "someone please", "just transfer me", "put me through please", "human", "get me a person",
             "can you transfer me", "transfer please", "connect me please", "speak to an agent",
             "live agent", "customer service", "a human please", "anyone", "operator please"]

NOT_PERSON = [  # refusals, mentions and questions that are not a request
    ("I don't need {p}, I just want my balance", "calm"),
    ("no, don't transfer me, I'm fine", "calm"),
    ("there's no need to put me through to {p}", "calm"),
    ("I don't want to speak to {p}, I'll use the menu", "calm"),
    ("no thanks, I don't need {p} today", "calm"),
    ("please don't connect me to {p}, I only need the opening hours", "calm"),
    ("I'd rather not talk to {p}, just tell me the balance", "calm"),
    ("you don't have to transfer me, the menu is fine", "calm"),
    ("I'm alright without {p}, thanks", "calm"),
    ("no, I don't want an agent, I pressed the wrong key", "calm"),
    ("I already spoke to {p} yesterday and they sorted it", "calm"),
    ("{p} told me to ring this number for the balance", "calm"),
    ("when I spoke to {p} last week they said it would be fine", "calm"),
    ("my son spoke to {p} and said it was all sorted", "calm"),
    ("the lady I spoke to said the card would arrive on Monday", "calm"),
    ("what time does the branch open on Saturday", "calm"),
    ("are your advisors open on bank holidays", "calm"),
    ("do your staff work weekends, just out of interest", "calm"),
    ("what are your opening hours", "calm"),
    ("no need for anyone, I've found it online", "calm"),
    ("I'm not after a person, I just want to pay my bill", "calm"),
    ("no agent needed, I just want to check a payment", "calm"),
    ("don't put me through to anybody, I'm just checking the balance", "calm"),
    ("I don't need to talk to anyone, it's sorted now", "calm"),
    ("I was going to ask for {p}, but the menu did the job", "calm"),
    ("if I need {p} later, which number do I press", "calm"),
    ("my wife wanted to speak to {p} but she's out", "calm"),
    ("the engineer who came round was lovely", "calm"),
    ("no, no transfer, I'll hold for the menu", "calm"),
    ("I don't need {p}, but this menu is slow", "annoyed"),
    ("I don't want {p}, I want my refund, it's been weeks", "annoyed"),
]

# --- leaving ---------------------------------------------------------------------------------

RELATION = ["my account", "all my accounts", "my contract", "the whole contract", "my membership",
            "my subscription", "my policy", "my broadband", "my mortgage", "everything",
            "my current account", "my energy account", "my phone contract", "the whole lot",
            "my savings account", "my insurance", "my plan", "my package", "the account"]
COMPETITOR = ["another bank", "another provider", "a different supplier", "a competitor",
              "someone else", "a different company", "another network", "another insurer",
              "a rival", "the competition", "Octopus", "Nationwide", "Vodafone", "Sky", "Monzo",
              "British Gas", "a better provider", "another airline", "a new supplier"]
LEAVE = [
    "I'm going to close {r}", "I want to close {r}", "I'm cancelling {r}", "cancel {r}, I'm leaving",
    "I'll be switching to {c}", "I'm moving to {c}", "I'm taking my business to {c}",
    "I'm taking my business elsewhere", "I'll take my money elsewhere", "I want to leave",
    "I'm leaving you", "I'm done with you lot", "that's it, I'm switching to {c}",
    "I've had an offer from {c} and I'm taking it", "you've just lost a customer",
    "I'll never use you again", "I won't be renewing {r}", "I'm shutting down {r}",
    "I'm off to {c}", "close {r} today please", "I want out of {r}", "I'm ending {r} with you",
    "I've had enough, I'm going to {c}", "consider {r} cancelled", "I'm moving everything to {c}",
    "I'm pulling {r}", "after twenty years I'm leaving", "I'm not staying with you after this",
    "we're going to switch to {c}", "I'm going elsewhere", "this is the last month you get from me",
    "I'm terminating {r}", "you can close {r} right now", "I'm transferring {r} to {c}",
    "I'm thinking seriously about moving to {c}", "I'll be gone by the end of the month",
    "I want to cancel the lot and go to {c}", "I'm never banking with you again",
    "I'll be looking for {c}", "that's it, we're done",
]
LEAVE_IF = ["if this isn't sorted today, ", "unless you fix this, ", "if you can't refund me, ",
            "one more mistake and ", "if this happens again, ", "if nobody calls me back, ",
            "if you put the price up again, ", ""]
NOT_LEAVE = [  # routine cancellations and calm questions: no intent
    ("I need to cancel my card, I think I lost it", "calm"),
    ("can I cancel a direct debit please", "calm"),
    ("I'd like to cancel my appointment on Thursday", "calm"),
    ("I want to cancel one order, I ordered it twice by mistake", "calm"),
    ("please cancel the standing order to my landlord", "calm"),
    ("I need to cancel tomorrow's delivery, I won't be in", "calm"),
    ("how long is the notice period on my contract", "calm"),
    ("what would happen if I wanted to close the account", "calm"),
    ("if I switched to paper statements, would it cost anything", "calm"),
    ("how do I cancel the extra data bolt-on", "calm"),
    ("can you cancel the engineer visit, it's fixed now", "calm"),
    ("my husband wanted to switch but we've decided to stay", "calm"),
    ("my daughter said I should move banks, but I'm happy here", "calm"),
    ("I'm not leaving, I just want to update my address", "calm"),
    ("I'm not switching, I just want a better tariff", "calm"),
    ("I need to close my late mother's account", "calm"),
    ("I'm calling to close my father's account, he passed away last month", "calm"),
    ("cancel the card that was stolen please", "calm"),
    ("I'm moving house and need to move my account to the new address", "calm"),
    ("I'd like to switch to paperless billing", "calm"),
    ("can I change my tariff to the fixed one", "calm"),
    ("I want to cancel my booking for the 14th", "calm"),
    ("please cancel the replacement card, I found the old one", "calm"),
    ("we don't want to leave, we just want the bill explained", "annoyed"),
    ("I've cancelled the old direct debit already", "calm"),
    ("I'm switching my payment date to the first of the month", "calm"),
    ("I need to cancel a cheque", "calm"),
    ("I'm going away and want to pause my subscription", "calm"),
]

# --- legal and complaints --------------------------------------------------------------------

AUTHORITY = ["my solicitor", "a lawyer", "the ombudsman", "the financial ombudsman", "the regulator",
             "trading standards", "the FCA", "Ofgem", "Ofcom", "Ofwat", "citizens advice",
             "my MP", "the energy ombudsman", "the papers", "the press", "the small claims court",
             "my lawyer", "the CAA", "the consumer rights people", "the local paper"]
LEGAL = [
    "I'll be contacting {a}", "I'm going to {a} about this", "I'm reporting you to {a}",
    "I'll take this to {a}", "I'm speaking to {a} tomorrow", "I'll be writing to {a}",
    "expect to hear from {a}", "I'm putting this in the hands of {a}", "I'm going straight to {a}",
    "I want to make a formal complaint", "I'd like to make a complaint", "I want to complain",
    "I'm going to put in a formal complaint", "I'll be raising a complaint about this",
    "I want this logged as a complaint", "I'm lodging a complaint", "I want to file a complaint",
    "I'll see you in court", "I'm going to sue", "I'll be taking legal action",
    "I'm taking you to court", "I'll be leaving a one star review",
    "I'm going to post this everywhere online",
    "I'll be telling everyone I know about this", "I'm putting this on social media",
    "I'm writing a complaint letter tonight", "I'll be putting it in writing as a complaint",
    "how do I make a formal complaint, because I'm making one", "I want the name of your complaints manager",
    "I'm going to report this", "this is going to the ombudsman", "I'm getting legal advice",
    "my solicitor will be in touch", "I want to escalate this to a formal complaint",
    "I'll take it all the way to {a} if I have to",
]
NOT_LEGAL = [
    ("my complaint from last month was sorted, thank you", "calm"),
    ("what's the postal address for the complaints team, just in case", "calm"),
    ("I'm a solicitor calling about my client's late father's estate", "calm"),
    ("my complaint was resolved, I'm just ringing about something else", "calm"),
    ("my neighbour said I should go to the ombudsman, but I just want it fixed", "annoyed"),
    ("I'm not complaining, I just want to know when the engineer comes", "calm"),
    ("the court has appointed me as my mother's deputy", "calm"),
    ("I've got a letter from a solicitor about probate", "calm"),
    ("I'm not going to make a fuss, I just need a new card", "calm"),
    ("I read a good review of your app", "calm"),
    ("I wanted to say thank you, no complaints at all", "calm"),
    ("I don't want to complain, I just want to understand the bill", "calm"),
    ("the police gave me a crime reference number", "calm"),
    ("I'm calling on behalf of trading standards about a survey", "calm"),
]

# --- the automated system --------------------------------------------------------------------

SYSTEM = ["this robot", "this machine", "this menu", "this automated system", "the system",
          "this stupid menu", "your automated thing", "this computer", "the voice thing", "this bot",
          "the recording", "this phone system", "your menu", "the automated line"]
BOT = [
    "{s} doesn't understand a word I say", "{s} keeps sending me round in circles", "{s} is useless",
    "I'm sick of talking to {s}", "I'm fed up with {s}", "I hate {s}", "{s} isn't listening to me",
    "none of these options are what I need", "none of the options fit my problem",
    "stop asking me to press buttons", "I've been through this menu three times",
    "you're not listening to me", "why won't it understand me", "I keep going back to the main menu",
    "I hate these automated systems", "I'm going round in circles here", "I don't want to talk to a machine",
    "this is the same question again", "you keep asking me the same thing",
    "it keeps putting me back to the start", "I've pressed every option and nothing",
    "{s} can't understand my accent", "I'm not talking to a robot", "stop repeating yourself",
    "your options are useless", "I've said it five times, are you deaf", "{s} won't let me through",
    "I'm stuck in this loop", "there's no option for my problem", "talking to a computer is pointless",
    "I've been pressing buttons for ten minutes", "{s} keeps cutting me off", "what a useless menu",
    "I can't get past {s}", "it doesn't recognise anything I say", "enough of this machine",
]
NOT_BOT = [
    ("sorry, could you repeat that", "calm"), ("option two please", "calm"), ("I pressed one", "calm"),
    ("which option is for billing", "calm"), ("sorry, I didn't catch the options", "calm"),
    ("can you say the menu again please", "calm"), ("billing please", "calm"), ("two", "calm"),
    ("yes, that's right", "calm"), ("no, the other one", "calm"),
    ("the menu was really quick, thanks", "calm"),
    ("I'll press three then", "calm"), ("sorry, my line is bad, say again", "calm"),
    ("is this the right option for a lost card", "calm"), ("I think I pressed the wrong button", "calm"),
    ("hang on, let me find my account number", "calm"), ("one moment, I'm getting a pen", "calm"),
    ("what were the choices again", "calm"), ("can I hear the menu one more time", "calm"),
    ("go through the options once more please", "calm"), ("sorry, what was option four", "calm"),
    ("I didn't hear the last option", "calm"), ("could the machine repeat the numbers", "calm"),
    ("the options went a bit fast for me", "calm"), ("which number was it for payments again", "calm"),
    ("is there an option for meter readings", "calm"),
    ("the system asked for my postcode, here it is", "calm"),
    ("can I just press a number for my balance", "calm"), ("say the options slower please", "calm"),
]

# --- frustration without an intent ----------------------------------------------------------

TOPIC = ["my bill", "the refund", "my parcel", "the repair", "my card", "the engineer",
         "my flight", "the claim", "my order", "the direct debit", "my meter", "the payment",
         "my broadband", "the replacement", "my booking", "the boiler", "my pension", "the charge"]
ANGRY = [
    "I'm livid", "I'm absolutely furious", "I'm fuming", "this is appalling", "this is disgraceful",
    "that is outrageous", "this is a complete shambles", "you lot are a disgrace",
    "I have never been treated this badly", "your service is the worst I have ever had",
    "I can't believe how incompetent you are", "how dare you charge me twice",
    "I can't stand the way you treat people", "this is absolutely unacceptable",
    "you should be ashamed of yourselves", "I am beyond angry", "I'm so angry I could scream",
    "this company is a joke", "you've ruined my week", "what an absolute farce",
    "{t} is a disaster and nobody cares", "{t} has been a nightmare from start to finish",
    "you've messed up {t} again, unbelievable", "I'm disgusted with how {t} was handled",
    "three weeks and {t} still isn't sorted, this is shocking", "you people are useless",
    "I'm at the end of my tether", "I'm absolutely seething", "this is daylight robbery",
    "what a pathetic excuse for a company", "I am so done with this nonsense",
    "you're taking the mick", "I'm utterly fed up with your lies", "I'm raging",
    "this is the worst company I've ever dealt with", "I've never been so insulted",
    "how hard can it be, honestly, it's pathetic", "I am fuming about {t}",
    "no one there has a clue what they're doing", "it's criminal what you've done with {t}",
]
SARCASM = [
    "oh brilliant, what a help you've been", "great, thanks for nothing", "oh wonderful, another hour wasted",
    "fantastic, {t} has gone wrong again, marvellous", "well done, you've managed to lose {t} twice",
    "oh lovely, another fee, just what I needed", "cheers for that, really helpful, not",
    "oh perfect, cut off again, well done", "brilliant service as always, said no one ever",
    "oh great, {t} is late again, what a surprise", "thanks ever so much for nothing",
    "amazing, truly amazing how bad this is", "wow, top class service, really",
    "super, another week of waiting, just super", "what a treat, on hold for an hour",
    "oh yes, very impressive, losing {t}", "nice one, you've doubled {t}, genius",
]
ANNOYED = [
    "I've been waiting forty minutes", "this is the third time I've called about {t}",
    "I'm a bit fed up to be honest", "it's quite frustrating", "still no sign of {t}, which isn't great",
    "I'm not happy about {t}", "I'm disappointed, to be honest", "{t} should have been sorted weeks ago",
    "honestly, it's getting a bit much", "come on, how long does it take", "this is taking ages",
    "I was told {t} would be done by Friday and it wasn't", "it's annoying having to ring again",
    "I'm getting a bit tired of chasing {t}", "not ideal, this", "that's not good enough really",
    "I've been on hold for ages", "why is {t} always so complicated", "I expected better, frankly",
    "this keeps happening with {t}", "it's a bit of a pain, all this", "I'm losing patience a bit",
    "I've had to take time off work for {t}", "I'm slightly annoyed about {t}",
    "it's been over a fortnight now", "nobody has got back to me about {t}",
    "I'm not impressed with how long {t} is taking", "I shouldn't have to chase {t}",
    "why does {t} cost so much more this month", "again? seriously?", "this is a hassle",
    "it's the second time this month", "I'd have expected a call back by now",
]
CALM = [
    "I'd like to check {t}", "can you tell me about {t}", "I'm calling about {t}",
    "just a question about {t}", "I want to update my address", "can I make a payment",
    "I'd like to give a meter reading", "what's my balance please", "when will {t} arrive",
    "that's great, thank you so much", "perfect, that's all I needed", "lovely, thanks for your help",
    "can I change my delivery slot", "I need a copy of my statement", "is {t} on its way",
    "I'd like to book an appointment", "what's the number for the branch",
    "my date of birth is the third of March", "yes, that's my postcode", "it ends in four two seven",
    "can I set up a direct debit", "I think {t} went through fine, just checking",
    "I moved house last week", "could you email me the details", "no, that's everything thanks",
    "thank you, you've been very helpful", "okay, that makes sense", "I'll wait for the letter then",
]
BAD_NEWS = [  # calm, no intent: distress not aimed at the company
    "my {k} passed away last week and I need to sort out the account",
    "I'm ringing because my {k} died on Sunday", "my {k} has died and I'm dealing with the bills",
    "I think someone has used my card, there are payments I don't recognise",
    "my phone was stolen yesterday and I need to block it", "my handbag was stolen with my cards in it",
    "I've been scammed, someone pretending to be the bank took my money",
    "there's a transaction I didn't make, I think it's fraud", "our house was burgled last night",
    "I've been in hospital and missed a payment",
    "I've just been diagnosed with cancer and I'm struggling with the bills",
    "my {k} is very ill and I'm looking after their affairs", "I lost my job and I can't pay this month",
    "my car was stolen from outside the house", "we've had a flood in the kitchen",
    "my {k} has dementia and I have power of attorney", "I had a fall and couldn't get to the post office",
    "someone opened an account in my name", "my wallet was taken on the bus",
    "I'm recently widowed and don't understand the bill", "I've had a stroke so please bear with me",
    "my {k} passed away and I need to close the account in their name",
]
# On-topic lines with no intent: what a bag of word vectors confuses with each intent.
NEAR_MISS = [
    "the automated menu was actually quite easy", "the robot voice is fine, I can hear you",
    "I don't mind the machine, it's quicker", "your app works really well these days",
    "the options were clear, I just pressed the wrong one", "the system sent me a text, which was handy",
    "we're staying with you, the new deal is fine", "I've been with you twenty years and I'm happy",
    "I'm not going anywhere, just want to check the price",
    "we thought about leaving but you matched the price",
    "my contract renews in March, what's the new price", "I'd like to renew my policy for another year",
    "I'd like to add my wife to the account", "can I open a second savings account",
    "your staff at the branch were lovely", "one of your engineers fixed it yesterday",
    "the advisor I spoke to was brilliant", "the manager at the shop sorted it out for me",
    "I got a letter saying my complaint was upheld, thank you", "I'm ringing to say thanks for the refund",
    "is the complaints address still the one in Leeds", "I've read the terms about cancelling, that's fine",
    "one", "two please", "yes please", "the first one", "operator of the month, you lot, honestly, thanks",
    "my daughter works in customer services too", "I work as a manager myself, so I understand",
    "no rush, I'm happy to hold", "I'll stay on the line", "okay, I'll wait", "I can hold, no problem",
    "press one for what, sorry", "is this the menu for new customers", "how do I reset my password",
    "my card isn't working in the machine at the shop", "the cash machine kept my card",
    "the machine at the station won't take my ticket", "the computer at the library printed it for me",
    "I'd like to switch my direct debit date", "I'd like to transfer money to my savings",
    "can I transfer the balance to my new card", "I need to move some money between accounts",
    "I'm moving house next month", "we're leaving for Spain on Friday, will my card work there",
    "I'm going on holiday, can you note that on the account",
    "I'm off work today so I can wait in for the engineer",
    "the letter said to call this number", "a person from your team left me a voicemail",
    "someone from your team called me, I'm calling back",
    "your colleague said it would take five days, that's fine",
]
KIN = ["mother", "father", "husband", "wife", "mum", "dad", "partner", "brother", "sister", "son", "nan",
       "grandad", "aunt"]


# --- mood in more words: the second round (each family paired with calm look-alikes) ----------

# Strong anger in constructions and words the first lists lack: outrage, contempt, "beyond a
# joke", regional turns of phrase, blame aimed at "you", superlatives of badness.
ANGRY_MORE = [
    "I'm incandescent", "I'm absolutely livid about {t}", "I am so angry right now",
    "I'm beside myself with anger", "I'm hopping mad", "I'm spitting feathers over {t}",
    "I'm proper fuming", "I'm well vexed with you lot", "I'm spewing about {t}", "I'm ropable",
    "I'm absolutely hacked off with this company", "I'm mad as hell about {t}",
    "that is appalling service", "that's shocking, absolutely shocking", "this is beyond a joke",
    "this is a total disgrace", "you have been utterly hopeless", "I can't stand how you treat customers",
    "I hate dealing with your company", "I despise this company", "the way you've handled {t} is scandalous",
    "it's an absolute scandal", "this is the last straw", "I've had it up to here with you",
    "I've had enough of this company", "never in my life have I been treated like this",
    "I have never been so angry with a company", "worst customer service I have ever had",
    "you're the worst company I've ever dealt with", "what a bunch of clowns",
    "you're all completely incompetent", "I'm sick to death of {t}", "it's disgusting how you've treated me",
    "you've treated me like dirt", "I'm not putting up with this any more",
    "this is a shambles from top to bottom",
    "I'm so frustrated I could cry", "you people make me so angry", "your company is an absolute disgrace",
    "how on earth can you justify {t}", "this is an utter disgrace", "it's a total rip-off",
    "you're ripping me off", "you're a bunch of cowboys", "what kind of outfit are you running",
    "I'm absolutely steaming", "I'm furious with the lot of you", "this is infuriating",
    "it's infuriating how long {t} is taking", "I am outraged", "I'm outraged by {t}", "I'm appalled",
    "I'm appalled at how {t} was handled", "I'm disgusted", "your staff are rude and useless",
    "I've been lied to again and again", "stop lying to me", "I'm at my wits' end with you",
    "enough is enough", "this is beyond ridiculous", "that's a disgrace, an absolute disgrace",
    "how is this acceptable", "it's nowhere near good enough and I'm furious", "this is a total stitch-up",
    "I'm gutted and furious about {t}", "you've made a complete mess of {t}, I'm so angry",
    "I am sick and tired of your excuses", "honestly, you are the most useless company going",
    "it's a complete and utter farce", "I'm so cross I can barely speak", "shame on you",
    "I will never forgive you for {t}", "I'm absolutely disgusted with your service",
    "every single time, you get it wrong, every time", "how incompetent can one company be",
    "I've been treated appallingly", "the service has been horrendous", "this is atrocious",
    "you have no idea how angry I am", "do you have any idea how angry I am right now",
]
SARCASM_MORE = [
    "oh that's just great", "oh yes, because that's really helpful", "thanks a bunch, really",
    "well that's just perfect, isn't it", "oh how lovely, another letter demanding money",
    "what a surprise, {t} has gone wrong", "gold star for you lot, losing {t}",
    "ten out of ten for incompetence", "congratulations, you've broken {t} again",
    "you're a real credit to the company, aren't you", "oh excellent, just what I wanted, more hold music",
    "wonderful, so I'm paying for nothing", "great job losing {t}", "oh terrific, another automated message",
    "lovely, so I just wait forever then", "oh good, {t} is wrong again, how refreshing",
    "well, aren't you a bunch of geniuses", "oh splendid, another excuse",
]
ANNOYED_MORE = [
    "I'm not happy about this", "I'm not best pleased", "I'm a little disappointed with {t}",
    "it's not really acceptable", "this has been dragging on for weeks", "I'm getting fed up with {t}",
    "I'm rather irritated", "it's irritating, to be honest", "I'm quite annoyed", "not great service, is it",
    "I've been passed around a bit", "I'm a bit cheesed off", "bit of a nightmare, this", "I'm not thrilled",
    "why hasn't anybody called me back", "it's getting tiresome", "you said you'd ring me and you didn't",
    "this isn't what I was promised", "I'm not really satisfied with that answer",
    "it's a bit much, charging me for {t}", "I'm unimpressed, to be honest",
    "I'm not happy, not happy at all",
    "I'd rather not have to ring three times", "I must say I'm disappointed with the service",
    "I'm afraid {t} still isn't right", "I was hoping for better than this", "it's all a bit slow",
]
# Calm look-alikes: bad news in strong words, warm praise with intensifiers, anger denied or
# aimed elsewhere, and questions about things that go wrong. None is angry at the company.
CALM_MORE = [
    "it's been an awful week, my {k} passed away", "I'm devastated, my {k} died on Friday",
    "I'm so upset, someone stole my purse", "it was horrible, they broke in while we were asleep",
    "I'm terrified, someone has taken money from my account",
    "the worst thing happened, my {k} is in hospital",
    "I'm heartbroken, we lost my {k} last month and I need to change the account",
    "I'm in a terrible state, the house flooded", "I'm shaking, I think I've been scammed",
    "I'm really worried, there are payments I never made",
    "it's been the worst year of my life, my {k} is ill",
    "absolutely brilliant, thank you so much!", "that's fantastic news!", "you've been so helpful, really",
    "the engineer was amazing", "I'm so pleased {t} arrived", "honestly, you've been great",
    "I'm really happy with the service", "wonderful, that's sorted then",
    "never had a problem with you, just checking {t}",
    "best service I've ever had, thank you", "your staff at the branch were wonderful",
    "your company has always been good to us", "you've been very patient with me",
    "I'm not angry, I just want to understand {t}", "no complaints at all, just a question",
    "I'm not upset, these things happen", "I'm not cross with you, it's not your fault",
    "don't worry, I'm not in a rush", "no problem at all", "it's not a big deal",
    "I'm not complaining, just checking {t}",
    "my neighbour is furious about the roadworks, but I'm ringing about {t}",
    "my {k} was livid with the builders, anyway, I need to update {t}",
    "what happens if {t} is late", "what should I do if my card is stolen", "is there a fee if I pay late",
    "can you explain why {t} went up", "why might {t} be delayed", "what if the engineer can't come",
    "I'm so sorry, I'm terrible with these menus", "sorry, I'm hopeless with numbers",
    "I hate to bother you, but could you check {t}", "I can't stand the cold, so I want the boiler checked",
]
# Genuine relief and thanks in the words sarcasm borrows ("oh", "great", "brilliant"): calm.
GENUINE = [
    "oh good, it has, thanks", "oh lovely, that's sorted then", "oh that's great news", "oh I see, okay",
    "oh right, that makes sense", "oh brilliant, thank you, that's a weight off", "oh wonderful, thanks dear",
    "oh perfect, that's exactly what I needed", "oh thank goodness, I was worried about {t}",
    "oh great, so {t} is on its way", "oh fantastic, you've found it", "oh how kind, thank you",
    "oh excellent, I'll look out for the letter", "oh super, that's quicker than I thought",
    "oh marvellous, thank you so much", "oh yes, of course, silly me", "oh that's a relief",
    "oh nice one, cheers for sorting {t}", "oh well done, that was quick", "oh, lovely, thanks ever so much",
    "oh hello, I'm not very good with phones, bear with me", "oh dear, I've pressed the wrong button, sorry",
]
# Calm questions that open like outrage does ("how...", "why..."): asking, not accusing.
QUESTIONS = [
    "how do I sign up", "how do I pay {t}", "how do I change {t}", "how do I get a new card",
    "how long will {t} take", "how much is {t}", "how can I check {t}", "how does the new plan work",
    "how do I upgrade my package", "how do I set up online banking", "how soon can the engineer come",
    "how would I go about moving {t}", "how is {t} worked out", "how many payments are left",
    "why is {t} different this month, just curious", "why do I need to send a form",
    "what do I need to do to join", "can I sign up over the phone", "is it possible to upgrade today",
]
# Short answers to the menu: a word or two names what the call is about, not how the caller feels.
MENU_ANSWERS = ["{t}", "{t} please", "about {t}", "it's about {t}", "refund", "a refund", "billing",
                "payments", "my account", "balance", "new card", "technical support", "sales",
                "opening hours",
                "change of address", "a question", "yes", "no", "yes, that's right", "no, something else",
                "the second one", "option three", "other", "a delivery", "a booking", "renewal"]


# --- what a phone-band recogniser makes of it ------------------------------------------------

HOMOPHONES = [
    (r"\bthrough\b", "threw"), (r"\bto\b", "too"), (r"\bsomeone\b", "some one"),
    (r"\bsomebody\b", "some body"),
    (r"\bagent\b", "a gent"), (r"\brepresentative\b", "represent a tive"), (r"\bsupervisor\b", "super visor"),
    (r"\bmanager\b", "man ager"), (r"\baccount\b", "a count"), (r"\bcomplaint\b", "complain"),
    (r"\bombudsman\b", "ombuds man"), (r"\bsolicitor\b", "solicit her"), (r"\brobot\b", "row bot"),
    (r"\bmenu\b", "men you"), (r"\bhate\b", "hey"), (r"\bfed up\b", "fed op"), (r"\bfurious\b", "furry us"),
    (r"\bI'm\b", "im"), (r"\bdon't\b", "dont"), (r"\bcan't\b", "cant"), (r"\bI've\b", "ive"),
    (r"\bwant to\b", "wanna"), (r"\bcancel\b", "cancer"), (r"\bhuman\b", "you man"),
    (r"\bperson\b", "purse in"),
    (r"\boperator\b", "opera tor"), (r"\blawyer\b", "lower"), (r"\bswitch\b", "which"),
    (r"\bstaff\b", "stuff"),
    (r"\bdisgraceful\b", "this graceful"), (r"\bappalling\b", "a polling"), (r"\blivid\b", "lived"),
    (r"\bfuming\b", "fuming"), (r"\bseething\b", "see thing"), (r"\bregulator\b", "regular tor"),
]
DROPPABLE = {"the", "a", "to", "I", "is", "it", "of", "and", "me", "you", "just", "that"}


def asr_garble(text: str, rng: random.Random) -> str:
    """A recogniser-style rendering: lower case, no punctuation, some homophones, some words lost."""
    for pattern, replacement in HOMOPHONES:
        if re.search(pattern, text, flags=re.IGNORECASE) and rng.random() < 0.45:
            text = re.sub(pattern, replacement, text, count=1, flags=re.IGNORECASE)
    words = [w for w in re.sub(r"[^\w\s']", " ", text).split()]
    kept = [w for w in words if not (w in DROPPABLE and rng.random() < 0.2)] or words
    return " ".join(kept).lower().replace("'", "")


# --- assembling ------------------------------------------------------------------------------

def _sentence(opener: str, body: str, ending: str) -> str:
    text = (opener + body + ending).strip()
    text = re.sub(r"\s+", " ", text)
    return text[0].upper() + text[1:]


def _sample(rng: random.Random, items: list[str], count: int) -> list[str]:
    return rng.sample(items, min(count, len(items)))


def generate(seed: int = SEED) -> list[Line]:
    """Every generated line, deterministic for a seed, duplicates removed, in a stable order."""
    rng = random.Random(seed)
    tails = tail()
    lines: list[Line] = []

    def add(text: str, intents: tuple[str, ...], level: str, note: str) -> None:
        lines.append(Line(text, intents, level, note))
        if rng.random() < 0.3:
            lines.append(Line(asr_garble(text, rng), intents, level, note + ", asr"))

    for template in ASK_PERSON:
        for person in _sample(rng, PERSON, 4):
            ending, level = rng.choice(tails)
            add(_sentence(rng.choice(OPENERS), template.format(p=person), ending), ("wants_person",),
                level, "generated: asks for a person")
    for terse in ASK_TERSE:
        ending, level = rng.choice(tails[:len(CALM_TAILS)] + tails[-4:])
        add(_sentence(rng.choice(OPENERS[:4]), terse, ending), ("wants_person",), level,
            "generated: terse request")
    for template, level in NOT_PERSON:
        for person in _sample(rng, PERSON, 2 if "{p}" in template else 1):
            add(_sentence(rng.choice(OPENERS), template.format(p=person), ""), (), level,
                "generated: mentions or declines a person")

    for template in LEAVE:
        for _ in range(3):
            condition = rng.choice(LEAVE_IF)
            body = template.format(r=rng.choice(RELATION), c=rng.choice(COMPETITOR))
            ending, level = rng.choice(tails)
            base = "annoyed" if condition else rng.choice(["calm", "annoyed", "annoyed", "angry"])
            add(_sentence(rng.choice(OPENERS), condition + body, ending), ("leave_or_cancel",),
                worst(base, level), "generated: leaving")
    for template, level in NOT_LEAVE:
        add(_sentence(rng.choice(OPENERS), template, ""), (), level,
            "generated: routine or reported, not leaving")
        add(_sentence(rng.choice(OPENERS), template, ""), (), level,
            "generated: routine or reported, not leaving")

    for template in LEGAL:
        for authority in _sample(rng, AUTHORITY, 3 if "{a}" in template else 2):
            ending, level = rng.choice(tails)
            base = rng.choice(["annoyed", "annoyed", "angry", "calm"])
            add(_sentence(rng.choice(OPENERS), template.format(a=authority), ending),
                ("legal_or_complaint",), worst(base, level), "generated: legal or complaint threat")
    for template, level in NOT_LEGAL:
        for _ in range(2):
            add(_sentence(rng.choice(OPENERS), template, ""), (), level, "generated: no threat")

    for template in BOT:
        for system in _sample(rng, SYSTEM, 3 if "{s}" in template else 2):
            ending, level = rng.choice(tails[len(CALM_TAILS):] + tails[:4])
            base = rng.choice(["annoyed", "annoyed", "angry"])
            add(_sentence(rng.choice(OPENERS), template.format(s=system), ending), ("bot_complaint",),
                worst(base, level), "generated: complains about the automated system")
    for template, level in NOT_BOT:
        for _ in range(2):
            add(_sentence(rng.choice(OPENERS), template, ""), (), level, "generated: uses the menu calmly")

    # two intents in one line: a person because of the menu, a person or I leave
    for _ in range(40):
        person = rng.choice(PERSON[:30])
        first, second = rng.choice([
            (rng.choice(BOT).format(s=rng.choice(SYSTEM)), "bot_complaint"),
            (rng.choice(LEAVE).format(r=rng.choice(RELATION), c=rng.choice(COMPETITOR)), "leave_or_cancel"),
            (rng.choice(LEGAL[:18]).format(a=rng.choice(AUTHORITY)), "legal_or_complaint"),
        ])
        ask = rng.choice(ASK_PERSON[:30]).format(p=person)
        text = f"{first}, {ask}" if rng.random() < 0.5 else f"{ask}, or {first}"
        add(_sentence(rng.choice(OPENERS), text, ""), tuple(sorted(("wants_person", second))),
            rng.choice(["annoyed", "angry"]), "generated: two intents")

    for template in ANGRY:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS), template.format(t=rng.choice(TOPIC)), ""), (), "angry",
                "generated: one strongly unhappy line")
    for template in SARCASM:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS[:6]), template.format(t=rng.choice(TOPIC)), ""), (), "angry",
                "generated: sarcasm that means it")
    for template in ANNOYED:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS), template.format(t=rng.choice(TOPIC)), ""), (), "annoyed",
                "generated: mild displeasure")
    for template in CALM:
        for _ in range(2):
            ending = rng.choice(CALM_TAILS)
            add(_sentence(rng.choice(OPENERS), template.format(t=rng.choice(TOPIC)), ending), (), "calm",
                "generated: routine")
    for template in BAD_NEWS:
        for _ in range(3):
            ending = rng.choice(["", "", " please", ", thank you", ", sorry", ", could you help"])
            add(_sentence(rng.choice(OPENERS), template.format(k=rng.choice(KIN)), ending), (), "calm",
                "generated: calm caller with bad news")

    for text in NEAR_MISS:
        add(_sentence(rng.choice(OPENERS), text, ""), (), "calm", "generated: on topic, no intent")
        add(_sentence(rng.choice(OPENERS), text, rng.choice(CALM_TAILS)), (), "calm",
            "generated: on topic, no intent")

    for template in ANGRY_MORE:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS), template.format(t=rng.choice(TOPIC)), ""), (), "angry",
                "generated: strong anger, more words")
    for template in SARCASM_MORE:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS[:6]), template.format(t=rng.choice(TOPIC)), ""), (), "angry",
                "generated: sarcasm that means it")
    for template in ANNOYED_MORE:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS), template.format(t=rng.choice(TOPIC)), ""), (), "annoyed",
                "generated: mild displeasure")
    for template in CALM_MORE:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS), template.format(t=rng.choice(TOPIC), k=rng.choice(KIN)), ""),
                (), "calm", "generated: calm look-alike of a mood line")

    for template in GENUINE:
        for _ in range(3):
            add(_sentence("", template.format(t=rng.choice(TOPIC)), rng.choice(["", "", " then", " thanks"])),
                (), "calm", "generated: calm look-alike of a mood line")
    for template in QUESTIONS:
        for _ in range(3):
            add(_sentence(rng.choice(OPENERS[:8]), template.format(t=rng.choice(TOPIC)),
                          rng.choice(CALM_TAILS)), (),
                "calm", "generated: calm look-alike of a mood line")
    for template in MENU_ANSWERS:
        for _ in range(2 if "{t}" in template else 1):
            add(_sentence(rng.choice(["", "", "Um, ", "Er, "]), template.format(t=rng.choice(TOPIC)), ""), (),
                "calm", "generated: short answer to the menu")

    unique: dict[str, Line] = {}
    for line in lines:
        unique.setdefault(line.text.lower(), line)
    return sorted(unique.values(), key=lambda line: (line.note, line.text))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(lines: list[Line]) -> str:
    """The YAML text of the generated file (one flow mapping per line, like the hand-written files)."""
    out = ["# GENERATED by corpus/generate.py from corpus/LABELS.md (train split only): do not edit.",
           "# Regenerate with `python corpus/generate.py`; the weights are trained on this file too."]
    for line in lines:
        intents = ", ".join(line.intents)
        out.append(f"- {{text: {_quote(line.text)}, intents: [{intents}], frustration: {line.frustration}, "
                   f"note: {_quote(line.note)}}}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: write the file, or check that the committed one is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if --out differs from what would be written")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        current = args.out.read_text() if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is not what corpus/generate.py writes: run `python corpus/generate.py`")
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out} ({text.count(chr(10)) - 2} lines)")
    return 0


def iter_texts() -> Iterator[str]:
    """The generated texts (for quick inspection)."""
    return (line.text for line in generate())


if __name__ == "__main__":
    sys.exit(main())
