import { expect, it } from "vitest";
import { Network, bytes } from "./helpers.js";
it("smoke", () => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.core(1).propose(bytes("a"));
  net.deliver();
  net.tickAll(3);
  expect(net.appliedData(2)).toEqual(["a"]);
  expect(net.appliedData(1)).toEqual(["a"]);
});
