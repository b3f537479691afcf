from data.synth.generate import main

main()
