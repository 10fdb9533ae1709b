// examples.js: example tweets for the page's example buttons and the benchmark's default input.
// A mix of human-written and bot-like (Markov chain, RNN, GPT-2, template) styles, in the manner of
// TweepFake; several come from examples/tweets.txt.

export const EXAMPLES = [
  { name: 'Morning run', style: 'human-like', text: 'Just finished my morning run, legs are jelly but worth it' },
  { name: 'Markov chain', style: 'bot-like', text: "The decade in the significantly easier schedule I Don't like h" },
  { name: 'Game night', style: 'human-like', text: "Can't believe the game last night!!! What a finish 🏀🔥" },
  { name: 'GPT-2 loop', style: 'bot-like', text: 'The best way to learn is to learn the best way to learn the best' },
  { name: 'Birthday', style: 'human-like', text: '@friend happy birthday!! hope you have the best day 🎂' },
  { name: 'Template', style: 'bot-like', text: 'Listen to this charming song by The Smiths https://t.co/example' },
  { name: 'Coffee shop', style: 'human-like', text: 'ugh the wifi at this coffee shop is a crime against humanity ☕️' },
  { name: 'RNN', style: 'bot-like', text: 'YEA now that note GOOD' },
  { name: 'GPT-2 news', style: 'bot-like', text: 'The new study shows that the brain is able to process information faster than the speed of light, according to researchers.' },
];
