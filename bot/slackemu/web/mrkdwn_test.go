package web

import "testing"

func TestMrkdwn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"*bold* _it_ ~gone~ `x<y`", "<b>bold</b> <i>it</i> <s>gone</s> <code class=\"mk-code\">x&lt;y</code>"},
		{"a*b*c and 2*3*4", "a*b*c and 2*3*4"},                                 // inside words: no formatting
		{"* not bold *", "* not bold *"},                                       // spaces inside the delimiters
		{"*_both_*", "<b><i>both</i></b>"},                                     // nested
		{"&lt;b&gt;hi&lt;/b&gt; &amp;amp;", "&lt;b&gt;hi&lt;/b&gt; &amp;amp;"}, // entities shown literally, once decoded
		{"<b>raw</b>", "&lt;b&gt;raw&lt;/b&gt;"},                               // not a control sequence Slack knows: text
		{"<@U0ALICE01> <@U0NOBODY1> <@U0X|fallback>", `<span class="mk-mention">@Alice</span> <span class="mk-mention">@U0NOBODY1</span> <span class="mk-mention">@fallback</span>`},
		{"<#C0CRMOWN1> <!subteam^S0HRTEAM1|@hr> <!here>", `<span class="mk-mention">#crm-owners</span> <span class="mk-mention">@hr-team</span> <span class="mk-mention mk-broadcast">@here</span>`},
		{"<https://x.example/a?b=1&amp;c=2|the *docs*>", `<a class="mk-link" href="https://x.example/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">the *docs*</a>`},
		{"<javascript:alert(1)|click>", "&lt;javascript:alert(1)|click&gt;"}, // never a link
		{"<https://evil\" onclick=\"x|a>", `<a class="mk-link" href="https://evil&#34; onclick=&#34;x" target="_blank" rel="noopener noreferrer">a</a>`},
		{"&lt;https://evil|Approve here&gt;", "&lt;https://evil|Approve here&gt;"}, // escaped by the bot: text
		{"line1\nline2", "line1<br>line2"},
		{"intro\n>quoted\n>more\nafter", `intro<blockquote class="mk-quote">quoted<br>more</blockquote>after`},
		{"```code *x*\n<y>```", `<pre class="mk-pre">code *x*` + "\n" + `&lt;y&gt;</pre>`},
		{":white_check_mark: done :nosuch:", `<span class="mk-emoji" title=":white_check_mark:">✅</span> done :nosuch:`},
		{"<!date^1392734382^{date}|Feb 18>", "Feb 18"},
		{"<mailto:a@b.example|mail>", `<a class="mk-link" href="mailto:a@b.example" target="_blank" rel="noopener noreferrer">mail</a>`},
	} {
		if got := string(Mrkdwn(tc.in, goldenNames)); got != tc.want {
			t.Errorf("Mrkdwn(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}
