package playground

import "testing"

func TestIdentityLeak(t *testing.T) {
	session := []string{"openai/gpt-4o-mini", "openrouter/meta-llama/llama-3.1-8b-instruct", "demo/fast"}
	names := map[string]string{"openai/gpt-4o-mini": "GPT-4o mini", "demo/fast": "Demo fast"}
	leaks := []string{
		"As Claude, I would say CRDTs merge.",
		"I am GPT-4, a large language model.",
		"I'm Gemini, and here is the answer.",
		"I was trained by Anthropic to be helpful.",
		"This model was made by OpenAI.",
		"Developed by Google DeepMind, I can help.",
		"my name is Llama",
		"Speaking as GPT-4o mini: yes.",  // display name of a session model
		"The openai docs say otherwise.", // maker of a session model
		"Llama models are open weights.", // family of a session model
		"Demo fast here: hello.",         // display name
	}
	for _, text := range leaks {
		if !IdentityLeak(text, session, names) {
			t.Errorf("not flagged: %q", text)
		}
	}
	clean := []string{
		"CRDTs are data types that merge without conflicts.",
		"As a result, the replicas converge.", // "as" not followed by a name
		"The claudication of the argument is fast.",
		"A gptx-like token is not a family word.",
		"",
	}
	for _, text := range clean {
		if IdentityLeak(text, session, names) {
			t.Errorf("flagged: %q", text)
		}
	}
	// Another session's family is only a leak when the answer claims it.
	if IdentityLeak("Claude Shannon founded information theory.", session, names) {
		t.Error("a mention of a family outside the session is not a self-identification")
	}
}
