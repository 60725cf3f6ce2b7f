package store

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"sync"
)

// Generated device names (docs/api.md, Device names).
const (
	// PlainNameAttempts is how many two-word names DeviceNames.Name offers
	// before it adds a number: an owner with a thousand devices needs a
	// number for fewer than one claim in a thousand, and an owner with more
	// devices than word pairs pays only this many refused statements.
	PlainNameAttempts = 3
	// NameAttempts is how many candidates a store tries before it gives
	// up; past PlainNameAttempts each candidate carries a random
	// four-digit suffix, so running out means something else is wrong.
	NameAttempts = 12
)

// DeviceNames proposes the names Wick gives devices that are claimed
// without one: two random words of its own lists joined by an underscore,
// such as "maple_falcon", the shape of Particle's generated names. The
// randomness comes from the source it was made with, so tests can make it
// repeat. It is safe for concurrent use.
type DeviceNames struct {
	mu sync.Mutex
	r  *rand.Rand
}

// NewDeviceNames returns a generator that draws from src.
func NewDeviceNames(src rand.Source) *DeviceNames {
	return &DeviceNames{r: rand.New(src)}
}

// NewRandomDeviceNames returns a generator seeded from crypto/rand, so
// that two servers do not name their devices in the same order.
func NewRandomDeviceNames() *DeviceNames {
	var seed [32]byte
	crand.Read(seed[:]) // never fails; see crypto/rand.Read
	return NewDeviceNames(rand.NewChaCha8(seed))
}

// Name returns the candidate for a claim's attempt-th try, from 0: two
// words while attempt < PlainNameAttempts ("maple_falcon"), then two
// words and a four-digit number ("maple_falcon_0427"). Every candidate is
// a valid device name: lower-case letters, digits and underscores, at
// most 22 characters.
func (n *DeviceNames) Name(attempt int) string {
	n.mu.Lock()
	first := nameFirstWords[n.r.IntN(len(nameFirstWords))]
	second := nameSecondWords[n.r.IntN(len(nameSecondWords))]
	var suffix int
	if attempt >= PlainNameAttempts {
		suffix = n.r.IntN(10000)
	}
	n.mu.Unlock()
	if attempt < PlainNameAttempts {
		return first + "_" + second
	}
	return fmt.Sprintf("%s_%s_%04d", first, second, suffix)
}

// The word lists, our own: short, common, friendly words of lower-case
// ASCII letters (3 to 8 of them). The first list holds things and
// qualities, the second animals and characters, so that names read as a
// pair: "copper_otter", "velvet_wizard".
var (
	nameFirstWords = []string{
		"acorn", "amber", "apple", "apricot", "arctic", "aspen", "autumn", "azure",
		"bamboo", "banjo", "basil", "beacon", "berry", "birch", "biscuit", "blue",
		"bold", "brave", "breezy", "bright", "bronze", "butter", "cactus", "candy",
		"canyon", "cedar", "cherry", "cinder", "citrus", "clever", "cloud", "clover",
		"cobalt", "cocoa", "comet", "copper", "coral", "cosmic", "cotton", "crimson",
		"crystal", "curly", "daisy", "dapper", "dawn", "desert", "dusty", "eager",
		"ember", "fennel", "fern", "fig", "fizzy", "frosty", "fuzzy", "gentle",
		"ginger", "glacier", "golden", "granite", "hazel", "honey", "indigo", "ivory",
		"jade", "jolly", "juniper", "kiwi", "lemon", "lilac", "lime", "lucky",
		"lunar", "mango", "maple", "marble", "meadow", "mellow", "mint", "misty",
		"mossy", "nimble", "nutmeg", "oak", "ocean", "olive", "onyx", "orange",
		"orchid", "pebble", "pepper", "plum", "polar", "poppy", "prairie", "quartz",
		"quiet", "rapid", "rusty", "saffron", "sage", "sandy", "silver", "snowy",
		"solar", "spruce", "steady", "stormy", "sunny", "swift", "tango", "teal",
		"thistle", "thunder", "toffee", "tulip", "velvet", "walnut", "willow", "windy",
		"winter", "zesty",
	}
	nameSecondWords = []string{
		"badger", "bandit", "beaver", "bison", "bobcat", "buffalo", "camel", "captain",
		"cheetah", "chipmunk", "condor", "cougar", "coyote", "crane", "cricket", "dingo",
		"dolphin", "donkey", "dragon", "eagle", "falcon", "ferret", "finch", "flamingo",
		"fox", "gazelle", "gecko", "giraffe", "goblin", "gopher", "heron", "hippo",
		"hornet", "husky", "ibex", "iguana", "jackal", "jaguar", "koala", "lemur",
		"leopard", "llama", "lobster", "lynx", "magpie", "mammoth", "marmot", "meerkat",
		"mole", "moose", "narwhal", "newt", "ninja", "ocelot", "octopus", "orca",
		"osprey", "otter", "owl", "panda", "panther", "parrot", "pelican", "penguin",
		"pilot", "pirate", "puffin", "puma", "quail", "rabbit", "raccoon", "raven",
		"robot", "salmon", "seal", "shark", "sparrow", "squid", "stork", "swan",
		"tapir", "tiger", "toucan", "turtle", "unicorn", "viking", "walrus", "weasel",
		"whale", "wizard", "wombat", "wren", "yak", "zebra",
	}
)
